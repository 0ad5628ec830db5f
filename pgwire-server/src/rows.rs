//! DataRows of a result, as arrow-pg encodes them, except that times read as PostgreSQL
//! writes them in text: pgwire always writes six fractional digits (`00:00:00.000000`),
//! PostgreSQL drops trailing zeros and the point when nothing is left (`00:00:00`,
//! `14:07:09.5`).

use std::sync::Arc;

use arrow_pg::encoder::{Encoder, encode_value};
use bytes::BytesMut;
use datafusion::arrow::array::RecordBatch;
use pgwire::api::Type;
use pgwire::api::results::{DataRowEncoder, FieldFormat, FieldInfo};
use pgwire::error::{PgWireError, PgWireResult};
use pgwire::messages::data::DataRow;
use pgwire::types::ToSqlText;
use postgres_types::{IsNull, ToSql};

/// The rows of `batch`, one DataRow each, read as the iterator is.
pub(crate) fn encode_rows(
    fields: Arc<Vec<FieldInfo>>,
    batch: RecordBatch,
) -> impl Iterator<Item = PgWireResult<DataRow>> {
    let mut encoder = PostgresTimes(DataRowEncoder::new(Arc::clone(&fields)));
    let schema = batch.schema();
    let mut row = 0;
    std::iter::from_fn(move || {
        if row >= batch.num_rows() {
            return None;
        }
        for (col, array) in batch.columns().iter().enumerate() {
            if let Err(e) = encode_value(&mut encoder, array, row, schema.field(col), &fields[col])
            {
                row = batch.num_rows();
                return Some(Err(e));
            }
        }
        row += 1;
        Some(Ok(encoder.take_row()))
    })
}

/// An encoder that writes times in text as PostgreSQL does and all else as `E` does.
struct PostgresTimes<E>(E);

impl<E: Encoder> Encoder for PostgresTimes<E> {
    type Item = E::Item;

    fn encode_field<T>(&mut self, value: &T, pg_field: &FieldInfo) -> PgWireResult<()>
    where
        T: ToSql + ToSqlText + Sized,
    {
        if pg_field.format() != FieldFormat::Text || !is_time(pg_field.datatype()) {
            return self.0.encode_field(value, pg_field);
        }
        let mut text = BytesMut::new();
        match value
            .to_sql_text(pg_field.datatype(), &mut text, pg_field.format_options())
            .map_err(PgWireError::ApiError)?
        {
            IsNull::Yes => self.0.encode_field(&None::<String>, pg_field),
            IsNull::No => {
                trim_fraction(&mut text);
                self.0
                    .encode_field(&String::from_utf8_lossy(&text).into_owned(), pg_field)
            }
        }
    }

    fn take_row(&mut self) -> Self::Item {
        self.0.take_row()
    }
}

/// Whether values of `ty` are written with fractional seconds.
pub(crate) fn is_time(ty: &Type) -> bool {
    [Type::TIMESTAMP, Type::TIMESTAMPTZ, Type::TIME, Type::TIMETZ].contains(ty)
}

/// Drops the trailing zeros of the fractional seconds in a time's text, and the point
/// when no digit is left. The fraction is the digits after a `.` that follows `:SS`, so
/// the dots of a German-style date (`02.01.1996`) are left alone.
pub(crate) fn trim_fraction(text: &mut BytesMut) {
    let bytes = text.as_ref();
    let Some(point) = (3..bytes.len()).find(|&i| {
        bytes[i] == b'.'
            && bytes[i - 3] == b':'
            && bytes[i - 2].is_ascii_digit()
            && bytes[i - 1].is_ascii_digit()
    }) else {
        return;
    };
    let digits = bytes[point + 1..]
        .iter()
        .take_while(|b| b.is_ascii_digit())
        .count();
    let kept = bytes[point + 1..point + 1 + digits]
        .iter()
        .rposition(|&b| b != b'0')
        .map_or(0, |last| last + 1);
    let start = if kept == 0 { point } else { point + 1 + kept };
    let rest = text.split_off(point + 1 + digits);
    text.truncate(start);
    text.extend_from_slice(&rest);
}

#[cfg(test)]
mod tests {
    use super::trim_fraction;
    use bytes::BytesMut;

    fn trimmed(text: &str) -> String {
        let mut bytes = BytesMut::from(text);
        trim_fraction(&mut bytes);
        String::from_utf8(bytes.to_vec()).unwrap()
    }

    #[test]
    fn fractional_seconds_lose_their_trailing_zeros() {
        assert_eq!(trimmed("1996-01-02 00:00:00.000000"), "1996-01-02 00:00:00");
        assert_eq!(
            trimmed("2024-03-05 14:07:09.500000"),
            "2024-03-05 14:07:09.5"
        );
        assert_eq!(trimmed("14:07:09.123456"), "14:07:09.123456");
        assert_eq!(
            trimmed("2024-03-05 14:07:09.120000+05:30"),
            "2024-03-05 14:07:09.12+05:30"
        );
        assert_eq!(trimmed("02.01.1996 10:00:00.000000"), "02.01.1996 10:00:00");
        assert_eq!(trimmed("1996-01-02"), "1996-01-02");
    }
}
