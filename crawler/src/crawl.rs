//! One run of a crawler.
//!
//! ```text
//!  list location ──► filter (hidden, empty, exclude) ──► group into table roots and
//!  partition folders ──► read new/changed folders (others from the last run's state)
//!  ──► merge schemas, split misfits ──► diff with the metastore ──► commit each table
//!  with its partitions in one transaction ──► save state
//! ```
//! Nothing is written before every file that needs reading has been read: an object
//! store that fails mid-run fails the run with no table touched.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use datafusion::datasource::listing::ListingTableUrl;
use datafusion::execution::SessionStateBuilder;
use datafusion::execution::runtime_env::RuntimeEnv;
use datafusion::object_store::{ObjectMeta, ObjectStore};
use futures::{StreamExt, TryStreamExt};
use quarry_files::types::arrow_type;
use quarry_files::{normalize_location, readable_as, serde_defaults};
use quarry_metastore::{
    Column, CrawlerRun, Database, HiveType, Metastore, Partition, StorageDescriptor, StorageFormat,
    Table, TableChange, TableType,
};
use serde::{Deserialize, Serialize};

use crate::definition::{CrawlerDefinition, DeleteBehavior, SchemaChange};
use crate::infer::{Compression, FileSchema, FormatKey, Inferrer, ReadError};
use crate::layout::{self, Level, Listed, TableFiles};
use crate::names::table_name;
use crate::{CrawlerError, Result};

/// Table property naming the crawler that owns a table.
pub const CRAWLER_PROPERTY: &str = "quarry.crawler";
/// How many files are read at once.
const READ_CONCURRENCY: usize = 32;

/// What the last run saw: per folder URL, a fingerprint of its files and their schema.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct CrawlState {
    pub folders: BTreeMap<String, FolderState>,
}

/// One folder as the last run saw it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FolderState {
    pub fingerprint: String,
    pub schema: FileSchema,
}

/// A folder's merged schema after this run, or why it cannot be used.
#[derive(Debug, Clone)]
struct Folder {
    /// Path below the table root.
    path: Vec<String>,
    url: String,
    files: usize,
    schema: Option<FileSchema>,
}

/// One file read: its key and what it is.
type FileRead = (String, Result<FileSchema, ReadError>);

/// A table this run arrives at.
struct Planned {
    name: String,
    root_url: String,
    levels: Vec<Level>,
    format: FormatKey,
    columns: Vec<Column>,
    folders: Vec<Folder>,
}

/// The crawl of one definition, filling in a run record.
pub(crate) struct Crawl<'a> {
    def: &'a CrawlerDefinition,
    metastore: &'a Metastore,
    runtime: &'a Arc<RuntimeEnv>,
    warehouse_location: String,
    run: &'a mut CrawlerRun,
    errors: Vec<String>,
    log: Vec<String>,
    /// URLs of every folder that holds data files, usable or not.
    listed_folders: BTreeSet<String>,
}

/// FNV-1a over the listing of a folder: stable across processes and versions.
fn fingerprint(files: &[ObjectMeta]) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut feed = |bytes: &[u8]| {
        for b in bytes {
            hash ^= u64::from(*b);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    };
    for f in files {
        feed(f.location.as_ref().as_bytes());
        feed(&f.size.to_le_bytes());
        match &f.e_tag {
            Some(tag) => feed(tag.as_bytes()),
            None => feed(&f.last_modified.timestamp_millis().to_le_bytes()),
        }
        feed(b"\n");
    }
    format!("{hash:016x}")
}

/// Merges `b` into `a`; `None` when a column's types cannot be reconciled. For delimited
/// text any conflict widens to `string`: text columns are read as strings and cast.
fn merge_columns(a: &[Column], b: &[Column], text: bool) -> Result<Vec<Column>, String> {
    let mut out = a.to_vec();
    for col in b {
        match out.iter_mut().find(|c| c.name == col.name) {
            None => out.push(col.clone()),
            Some(existing) => match merge_type(&existing.data_type, &col.data_type) {
                Some(t) => existing.data_type = t,
                None if text => existing.data_type = HiveType::String,
                None => {
                    return Err(format!(
                        "column \"{}\" is {} here but {} elsewhere",
                        col.name, col.data_type, existing.data_type
                    ));
                }
            },
        }
    }
    Ok(out)
}

/// The narrowest type both can be read as (structs gain fields), if any.
fn merge_type(a: &HiveType, b: &HiveType) -> Option<HiveType> {
    if a == b {
        return Some(a.clone());
    }
    if let (HiveType::Struct(fa), HiveType::Struct(fb)) = (a, b) {
        let mut fields = fa.clone();
        for f in fb {
            match fields.iter_mut().find(|x| x.name == f.name) {
                Some(x) => x.data_type = merge_type(&x.data_type, &f.data_type)?,
                None => fields.push(f.clone()),
            }
        }
        return Some(HiveType::Struct(fields));
    }
    if let (HiveType::Array(ia), HiveType::Array(ib)) = (a, b) {
        return Some(HiveType::Array(Box::new(merge_type(ia, ib)?)));
    }
    let (aa, ab) = (arrow_type(a), arrow_type(b));
    if readable_as(&aa, &ab) {
        Some(b.clone())
    } else if readable_as(&ab, &aa) {
        Some(a.clone())
    } else {
        None
    }
}

/// Why files of `schema` cannot be read as `columns`, if they cannot.
fn unreadable_column(schema: &FileSchema, columns: &[Column]) -> Option<String> {
    if schema.format.format == StorageFormat::TextFile {
        return None;
    }
    schema.columns.iter().find_map(|c| {
        let declared = columns.iter().find(|t| t.name == c.name)?;
        (!readable_as(&arrow_type(&c.data_type), &arrow_type(&declared.data_type))).then(|| {
            format!(
                "column \"{}\" is {} in its files but {} in the table",
                c.name, c.data_type, declared.data_type
            )
        })
    })
}

fn compression_name(c: Compression) -> &'static str {
    match c {
        Compression::None => "none",
        Compression::Gzip => "gzip",
        Compression::Zstd => "zstd",
    }
}

impl<'a> Crawl<'a> {
    pub(crate) fn new(
        def: &'a CrawlerDefinition,
        metastore: &'a Metastore,
        runtime: &'a Arc<RuntimeEnv>,
        warehouse_location: String,
        run: &'a mut CrawlerRun,
    ) -> Self {
        Self {
            def,
            metastore,
            runtime,
            warehouse_location,
            run,
            errors: Vec::new(),
            log: Vec::new(),
            listed_folders: BTreeSet::new(),
        }
    }

    fn error(&mut self, message: String) {
        tracing::info!(crawler = %self.def.name, "{message}");
        self.errors.push(message);
    }

    fn note(&mut self, message: String) {
        self.log.push(message);
    }

    /// Copies problems and notes into the run record.
    pub(crate) fn finish_record(&mut self) {
        self.run.errors = self.errors.join("\n");
        self.run.log = self.log.join("\n");
    }

    /// Runs the crawl; returns the state to keep for the next run.
    pub(crate) async fn execute(&mut self, previous: CrawlState) -> Result<CrawlState> {
        let def = self.def;
        let url = ListingTableUrl::parse(&def.location)?;
        let store = self.runtime.object_store(url.object_store())?;
        self.ensure_database().await?;

        // 1. List and filter.
        let prefix = url.prefix().clone();
        let objects: Vec<ObjectMeta> =
            store
                .list(Some(&prefix))
                .try_collect()
                .await
                .map_err(|source| CrawlerError::Listing {
                    crawler: def.name.clone(),
                    location: def.location.clone(),
                    source,
                })?;
        self.run.objects_listed = objects.len() as u64;
        let files = self.filter(objects, &prefix)?;
        if files.is_empty() {
            self.error(format!("{}: no data files found", def.location));
        }

        // 2. Tables and partition folders.
        let depth = self.table_depth(&url, &files)?;
        let (tables, skipped) = layout::group_tables(files, depth);
        if !skipped.is_empty() {
            let (key, why) = &skipped[0];
            self.note(format!(
                "{} file(s) not part of any table, e.g. {key}: {why}",
                skipped.len()
            ));
        }

        // 3. Read what changed; reuse the rest.
        let inferrer = Inferrer::new(
            SessionStateBuilder::new()
                .with_runtime_env(Arc::clone(self.runtime))
                .with_default_features()
                .build(),
            Arc::clone(&store),
        );
        let mut state = CrawlState::default();
        let mut per_table = Vec::new();
        let mut to_read: Vec<(usize, usize, ObjectMeta)> = Vec::new();
        for (t, table) in tables.iter().enumerate() {
            let root_url = self.folder_url(&table.root);
            let mut folders = Vec::new();
            for (f, (path, metas)) in table.folders.iter().enumerate() {
                let url = format!("{root_url}{}", folder_suffix(path));
                self.listed_folders.insert(url.clone());
                let print = fingerprint(metas);
                let cached = previous
                    .folders
                    .get(&url)
                    .filter(|s| s.fingerprint == print)
                    .map(|s| s.schema.clone());
                if cached.is_none() {
                    to_read.extend(metas.iter().map(|m| (t, f, m.clone())));
                }
                folders.push((
                    Folder {
                        path: path.clone(),
                        url,
                        files: metas.len(),
                        schema: cached.clone(),
                    },
                    print,
                    cached.is_some(),
                ));
            }
            per_table.push(folders);
        }
        let reads: Vec<_> = futures::stream::iter(to_read.into_iter().map(|(t, f, meta)| {
            let inferrer = &inferrer;
            async move { (t, f, meta.location.to_string(), inferrer.infer(&meta).await) }
        }))
        .buffer_unordered(READ_CONCURRENCY)
        .collect()
        .await;
        self.run.objects_read = reads.len() as u64;
        let mut read_results: BTreeMap<(usize, usize), Vec<FileRead>> = BTreeMap::new();
        for (t, f, key, result) in reads {
            if let Err(ReadError::Store(reason)) = &result {
                return Err(CrawlerError::StoreFailed {
                    crawler: def.name.clone(),
                    key: self.object_url(&key),
                    reason: reason.clone(),
                });
            }
            read_results.entry((t, f)).or_default().push((key, result));
        }

        // Merge each folder that was read.
        for ((t, f), mut results) in read_results {
            results.sort_by(|a, b| a.0.cmp(&b.0));
            let table_depth = tables[t].depth;
            let (folder, print, _) = &mut per_table[t][f];
            let mut merged: Option<FileSchema> = None;
            let mut failed = false;
            for (key, result) in results {
                let key = self.object_url(&key);
                match result {
                    Err(ReadError::File(reason)) | Err(ReadError::Store(reason)) => {
                        self.errors.push(format!("{key}: {reason}"));
                        failed = true;
                    }
                    Ok(schema) => match &mut merged {
                        None => merged = Some(schema),
                        Some(m) if m.format != schema.format => {
                            self.errors.push(format!(
                                "{key}: format {} differs from {} of other files in its folder",
                                schema.format.describe(),
                                m.format.describe()
                            ));
                            failed = true;
                        }
                        Some(m) => {
                            let text = m.format.format == StorageFormat::TextFile;
                            match merge_columns(&m.columns, &schema.columns, text) {
                                Ok(c) => m.columns = c,
                                Err(why) => {
                                    self.errors.push(format!("{key}: {why} in its folder"));
                                    failed = true;
                                }
                            }
                        }
                    },
                }
            }
            // A partition with unusable files is left out (and read again next run); an
            // unpartitioned table is made from the files that could be read.
            if failed && table_depth > 0 {
                self.errors.push(format!(
                    "{}: partition not registered because of the errors above",
                    folder.url
                ));
                folder.schema = None;
            } else {
                folder.schema = merged.clone();
                if !failed && let Some(schema) = merged {
                    state.folders.insert(
                        folder.url.clone(),
                        FolderState {
                            fingerprint: print.clone(),
                            schema,
                        },
                    );
                }
            }
        }
        for folders in &per_table {
            for (folder, print, cached) in folders {
                if *cached && let Some(schema) = &folder.schema {
                    state.folders.insert(
                        folder.url.clone(),
                        FolderState {
                            fingerprint: print.clone(),
                            schema: schema.clone(),
                        },
                    );
                }
            }
        }

        // 4. Tables: group, merge, split.
        let existing = self.metastore.list_tables(&def.database).await?;
        let mut planned = Vec::new();
        for (table, folders) in tables.iter().zip(per_table) {
            let folders: Vec<Folder> = folders.into_iter().map(|(f, _, _)| f).collect();
            planned.extend(self.plan_table(table, folders, &existing));
        }
        dedup_names(&mut planned);

        // 5. Compare with the metastore and commit, table by table.
        let mut seen = BTreeSet::new();
        for table in planned {
            seen.insert(table.name.clone());
            let current = existing.iter().find(|t| t.name == table.name);
            if let Err(e) = self.commit_table(table, current).await {
                self.error(e.to_string());
            }
        }
        self.handle_vanished_tables(&existing, &seen).await?;
        Ok(state)
    }

    async fn ensure_database(&mut self) -> Result<()> {
        let name = &self.def.database;
        if self.metastore.get_database(name).await?.is_none() {
            let location = format!("{}{name}.db/", self.warehouse_location);
            let mut db = Database::new(name.clone(), location);
            db.description = Some(format!("Created by crawler {}", self.def.name));
            if self.metastore.create_database(&db, true).await? {
                self.note(format!("database {name} created"));
            }
        }
        Ok(())
    }

    fn filter(
        &mut self,
        objects: Vec<ObjectMeta>,
        prefix: &datafusion::object_store::path::Path,
    ) -> Result<Vec<Listed>> {
        let options = &self.def.options;
        let invalid = |reason: String| CrawlerError::InvalidOption {
            crawler: self.def.name.clone(),
            option: "exclude".into(),
            reason,
        };
        let full = options.exclude_set().map_err(invalid)?;
        let by_name = crate::definition::CrawlerOptions {
            exclude: options
                .exclude
                .iter()
                .filter(|p| !p.contains('/'))
                .cloned()
                .collect(),
            ..Default::default()
        }
        .exclude_set()
        .map_err(invalid)?;
        let (mut hidden, mut excluded) = (0, 0);
        let mut files = Vec::new();
        for meta in objects {
            let Some(parts) = meta.location.prefix_match(prefix) else {
                continue;
            };
            let segments: Vec<String> = parts.map(|p| p.as_ref().to_string()).collect();
            if segments.is_empty() {
                continue;
            }
            let relative = segments.join("/");
            if segments
                .iter()
                .any(|s| s.starts_with('_') || s.starts_with('.') || s.ends_with("$folder$"))
                || meta.size == 0
            {
                hidden += 1;
                continue;
            }
            if full.is_match(&relative) || segments.iter().any(|s| by_name.is_match(s)) {
                excluded += 1;
                continue;
            }
            files.push(Listed { segments, meta });
        }
        if hidden > 0 {
            self.note(format!(
                "{hidden} hidden or empty object(s) ignored (_*, .*, empty files)"
            ));
        }
        if excluded > 0 {
            self.note(format!(
                "{excluded} object(s) excluded by the exclude patterns"
            ));
        }
        Ok(files)
    }

    /// Depth of table roots below the location.
    fn table_depth(&mut self, url: &ListingTableUrl, files: &[Listed]) -> Result<usize> {
        let location_level = url.prefix().parts().count() + usize::from(url.scheme() == "s3");
        match self.def.options.table_level {
            Some(level) if level < location_level => Err(CrawlerError::InvalidOption {
                crawler: self.def.name.clone(),
                option: "table_level".into(),
                reason: format!(
                    "level {level} is above the crawl location {}, which is at level {location_level}",
                    self.def.location
                ),
            }),
            Some(level) => {
                self.note(format!(
                    "tables are the folders at level {level} (the location is at level {location_level})"
                ));
                Ok(level - location_level)
            }
            None => {
                let depth = layout::default_table_depth(files);
                self.note(if depth == 0 {
                    format!(
                        "{} is one table: it holds data files or partition folders",
                        self.def.location
                    )
                } else {
                    format!("each folder below {} is a table", self.def.location)
                });
                Ok(depth)
            }
        }
    }

    fn folder_url(&self, segments: &[String]) -> String {
        format!("{}{}", self.def.location, folder_suffix(segments))
    }

    /// The URL of an object key, for messages.
    fn object_url(&self, key: &str) -> String {
        match self.def.location.strip_prefix("s3://") {
            Some(rest) => {
                let bucket = rest.split('/').next().unwrap_or_default();
                format!("s3://{bucket}/{key}")
            }
            None => format!("file:///{key}"),
        }
    }

    /// Turns one table root into tables: one, or more when plain child folders do not
    /// fit together.
    fn plan_table(
        &mut self,
        table: &TableFiles,
        folders: Vec<Folder>,
        existing: &[Table],
    ) -> Vec<Planned> {
        let base_name = table_name(
            &self.def.options.table_prefix,
            table
                .root
                .last()
                .map(String::as_str)
                .unwrap_or_else(|| location_name(&self.def.location)),
        );
        let root_url = self.folder_url(&table.root);
        let mut notes = Vec::new();
        let levels = layout::partition_levels(
            folders.iter().map(|f| &f.path),
            table.depth,
            &self.def.options.partition_names,
            &mut notes,
        );
        for n in notes {
            self.note(format!("table {base_name}: {n}"));
        }
        let incomplete = folders.iter().any(|f| f.schema.is_none());
        let usable: Vec<Folder> = folders.into_iter().filter(|f| f.schema.is_some()).collect();
        if usable.is_empty() {
            if incomplete {
                self.error(format!(
                    "table {base_name} at {root_url}: no folder could be read; table not created or changed"
                ));
            }
            return vec![Planned {
                name: base_name,
                root_url,
                levels,
                format: FormatKey {
                    format: StorageFormat::Parquet,
                    compression: Compression::None,
                    delimiter: None,
                    header: false,
                },
                columns: Vec::new(),
                folders: Vec::new(),
            }];
        }

        // Group by the first partition folder: plain folders (not `k=v`, not dates) that
        // do not fit the others become tables of their own.
        let splittable =
            table.depth > 0 && !usable.iter().any(|f| layout::partition_like(&f.path[0]));
        let mut children: BTreeMap<String, Vec<Folder>> = BTreeMap::new();
        for folder in usable {
            let key = if splittable {
                folder.path[0].clone()
            } else {
                String::new()
            };
            children.entry(key).or_default().push(folder);
        }
        struct Group {
            children: Vec<String>,
            format: FormatKey,
            columns: Vec<Column>,
            folders: Vec<Folder>,
        }
        let mut groups: Vec<Group> = Vec::new();
        let mut seed: Option<Vec<Column>> = existing
            .iter()
            .find(|t| {
                t.name == base_name && t.properties.get(CRAWLER_PROPERTY) == Some(&self.def.name)
            })
            .map(|t| t.columns.clone());
        for (child, folders) in children {
            // Within one group of folders (a child, or the whole table), a folder that does
            // not fit is left out.
            let mut group: Option<Group> = None;
            for folder in folders {
                let schema = folder.schema.clone().expect("usable folders have schemas");
                match &mut group {
                    // The table's current columns come first, so a folder that changed a
                    // column's type is the one left out, whatever its name sorts as.
                    None => match merge_columns(
                        seed.take().unwrap_or_default().as_slice(),
                        &schema.columns,
                        schema.format.format == StorageFormat::TextFile,
                    ) {
                        Ok(columns) => {
                            group = Some(Group {
                                children: vec![child.clone()],
                                format: schema.format.clone(),
                                columns,
                                folders: vec![folder],
                            })
                        }
                        Err(why) => self.errors.push(format!(
                            "{}: partition not registered in table {base_name}: {why}",
                            folder.url
                        )),
                    },
                    Some(g) => {
                        let fits = if g.format != schema.format {
                            Err(format!(
                                "its files are {}, the table's are {}",
                                schema.format.describe(),
                                g.format.describe()
                            ))
                        } else {
                            merge_columns(
                                &g.columns,
                                &schema.columns,
                                g.format.format == StorageFormat::TextFile,
                            )
                        };
                        match fits {
                            Ok(columns) => {
                                g.columns = columns;
                                g.folders.push(folder);
                            }
                            Err(why) => self.errors.push(format!(
                                "{}: partition not registered in table {base_name}: {why}",
                                folder.url
                            )),
                        }
                    }
                }
            }
            let Some(group) = group else { continue };
            // Join the first earlier group it fits.
            let mut placed = false;
            for g in groups.iter_mut() {
                if g.format != group.format {
                    continue;
                }
                if let Ok(columns) = merge_columns(
                    &g.columns,
                    &group.columns,
                    g.format.format == StorageFormat::TextFile,
                ) {
                    g.columns = columns;
                    g.children.extend(group.children.clone());
                    g.folders.extend(group.folders.clone());
                    placed = true;
                    break;
                }
            }
            if !placed {
                groups.push(group);
            }
        }
        // The group with the most files keeps the table's name.
        groups.sort_by_key(|g| std::cmp::Reverse(g.folders.iter().map(|f| f.files).sum::<usize>()));
        let mut out = Vec::new();
        for (i, g) in groups.into_iter().enumerate() {
            let name = if i == 0 {
                base_name.clone()
            } else {
                format!(
                    "{base_name}_{}",
                    crate::names::column_name(&g.children[0]).trim_start_matches('_')
                )
            };
            if i == 0 {
                self.note(format!(
                    "table {name}: {} folder(s) of {}{}",
                    g.folders.len(),
                    g.format.describe(),
                    if levels.is_empty() {
                        String::new()
                    } else {
                        format!(
                            ", partitioned by {}",
                            levels
                                .iter()
                                .map(|l| l.name.as_str())
                                .collect::<Vec<_>>()
                                .join(", ")
                        )
                    }
                ));
            } else {
                self.note(format!(
                    "table {name}: folder(s) {} split from {base_name}: {} does not fit its {} files with columns ({})",
                    g.children.join(", "),
                    g.format.describe(),
                    out.first().map(|p: &Planned| p.format.describe()).unwrap_or_default(),
                    g.columns.iter().map(|c| format!("{} {}", c.name, c.data_type)).collect::<Vec<_>>().join(", ")
                ));
            }
            out.push(Planned {
                name,
                root_url: root_url.clone(),
                levels: levels.clone(),
                format: g.format,
                columns: g.columns,
                folders: g.folders,
            });
        }
        out
    }

    /// Creates or updates one table and its partitions (one transaction).
    async fn commit_table(&mut self, mut plan: Planned, current: Option<&Table>) -> Result<()> {
        let def = self.def;
        let name = plan.name.clone();
        if let Some(t) = current
            && t.properties.get(CRAWLER_PROPERTY) != Some(&def.name)
        {
            self.error(format!(
                "table {}.{name} exists and was not created by crawler {}; left unchanged",
                def.database, def.name
            ));
            return Ok(());
        }
        if plan.folders.is_empty() {
            return Ok(());
        }
        let values: Vec<Vec<String>> = plan
            .folders
            .iter()
            .map(|f| layout::partition_values(&plan.levels, &f.path))
            .collect();
        let mut keys = layout::typed_keys(&plan.levels, &values);
        let mut columns = plan.columns.clone();
        if let Some(t) = current {
            let old_keys: Vec<&str> = t.partition_keys.iter().map(|k| k.name.as_str()).collect();
            let new_keys: Vec<&str> = keys.iter().map(|k| k.name.as_str()).collect();
            if old_keys != new_keys {
                self.error(format!(
                    "table {}.{name}: partition keys changed from ({}) to ({}); table left unchanged",
                    def.database,
                    old_keys.join(", "),
                    new_keys.join(", ")
                ));
                return Ok(());
            }
            // Existing key types stay unless a new value does not fit them.
            for (i, key) in keys.iter_mut().enumerate() {
                let old = &t.partition_keys[i];
                let fits = values
                    .iter()
                    .all(|v| layout::value_fits(&old.data_type, &v[i]));
                if fits {
                    key.data_type = old.data_type.clone();
                } else if old.data_type != HiveType::String {
                    self.note(format!(
                        "table {name}: partition key {} widened from {} to string for new values",
                        old.name, old.data_type
                    ));
                    key.data_type = HiveType::String;
                }
            }
            columns = self.evolve_columns(&name, t, &plan.columns, plan.format.format);
        }
        // Folders whose files cannot be read as the table's columns are left out.
        let mut kept_values = Vec::new();
        let mut kept = Vec::new();
        for (folder, v) in plan.folders.drain(..).zip(values) {
            let schema = folder
                .schema
                .as_ref()
                .expect("planned folders have schemas");
            match unreadable_column(schema, &columns) {
                Some(why) => self.errors.push(format!(
                    "{}: partition not registered in table {name}: {why}",
                    folder.url
                )),
                None => {
                    kept_values.push(v);
                    kept.push(folder);
                }
            }
        }

        let table = self.table_definition(&plan, columns, keys.clone(), current);
        let partitioned = !keys.is_empty();
        let add: Vec<Partition> = if partitioned {
            kept.iter()
                .zip(&kept_values)
                .map(|(f, v)| Partition {
                    values: v.clone(),
                    location: f.url.clone(),
                })
                .collect()
        } else {
            Vec::new()
        };
        let mut remove = Vec::new();
        if let Some(t) = current
            && partitioned
        {
            let existing = self.metastore.list_partitions(&t.database, &t.name).await?;
            // A partition under the table root whose folder holds no files any more; ones
            // left out because of errors still have files and stay.
            let vanished: Vec<&Partition> = existing
                .iter()
                .filter(|p| {
                    p.location.starts_with(&plan.root_url)
                        && !self.listed_folders.contains(&p.location)
                })
                .collect();
            if !vanished.is_empty() {
                match def.options.delete_behavior {
                    DeleteBehavior::Delete => {
                        remove = vanished.iter().map(|p| p.values.clone()).collect();
                        self.note(format!(
                            "table {name}: {} partition(s) whose folders vanished removed",
                            vanished.len()
                        ));
                    }
                    DeleteBehavior::Log => self.note(format!(
                        "table {name}: {} partition(s) whose folders vanished kept (delete_behavior = log), e.g. {}",
                        vanished.len(),
                        vanished[0].location
                    )),
                }
            }
            let unchanged = t.columns == table.columns
                && t.partition_keys == table.partition_keys
                && t.storage == table.storage
                && t.properties == table.properties;
            let existing_locations: BTreeSet<&str> =
                existing.iter().map(|p| p.location.as_str()).collect();
            let new_partitions = add
                .iter()
                .filter(|p| !existing_locations.contains(p.location.as_str()))
                .count();
            if unchanged && new_partitions == 0 && remove.is_empty() {
                return Ok(());
            }
        } else if let Some(t) = current
            && t.columns == table.columns
            && t.storage == table.storage
            && t.properties == table.properties
        {
            return Ok(());
        }
        let change = TableChange {
            table,
            create: current.is_none(),
            add,
            remove,
        };
        let counts = self.metastore.apply_table_change(&change).await?;
        if change.create {
            self.run.tables_created += 1;
            self.note(format!(
                "table {}.{name} created with {} partition(s)",
                def.database, counts.partitions_added
            ));
        } else {
            self.run.tables_updated += 1;
        }
        self.run.partitions_added += counts.partitions_added as u64;
        self.run.partitions_removed += counts.partitions_removed as u64;
        Ok(())
    }

    /// The table's columns after this run, by the schema change policy.
    fn evolve_columns(
        &mut self,
        name: &str,
        table: &Table,
        crawled: &[Column],
        format: StorageFormat,
    ) -> Vec<Column> {
        let update = self.def.options.schema_change == SchemaChange::Update;
        let mut columns = table.columns.clone();
        for col in crawled {
            match columns.iter_mut().find(|c| c.name == col.name) {
                None if update => {
                    self.note(format!(
                        "table {name}: new column {} {} added",
                        col.name, col.data_type
                    ));
                    columns.push(col.clone());
                }
                None => self.note(format!(
                    "table {name}: new column {} {} not added (schema_change = log)",
                    col.name, col.data_type
                )),
                Some(existing) if existing.data_type != col.data_type => {
                    let widens = format != StorageFormat::TextFile
                        && merge_type(&existing.data_type, &col.data_type).as_ref()
                            == Some(&col.data_type);
                    if widens && update {
                        self.note(format!(
                            "table {name}: column {} widened from {} to {}",
                            col.name, existing.data_type, col.data_type
                        ));
                        existing.data_type = col.data_type.clone();
                    } else {
                        self.errors.push(format!(
                            "table {name}: column {} is {} in the files but {} in the table; the table keeps {}",
                            col.name, col.data_type, existing.data_type, existing.data_type
                        ));
                    }
                }
                Some(_) => {}
            }
        }
        columns
    }

    fn table_definition(
        &self,
        plan: &Planned,
        columns: Vec<Column>,
        partition_keys: Vec<Column>,
        current: Option<&Table>,
    ) -> Table {
        let format = &plan.format;
        let mut serde_properties = serde_defaults(format.format);
        if let Some(d) = format.delimiter {
            serde_properties.insert("field.delim".into(), (d as char).to_string());
        }
        let mut properties = current.map(|t| t.properties.clone()).unwrap_or_default();
        properties.insert(CRAWLER_PROPERTY.into(), self.def.name.clone());
        properties.insert("classification".into(), format.classification().into());
        properties.insert(
            "compressionType".into(),
            compression_name(format.compression).into(),
        );
        match format.compression {
            Compression::None => properties.remove("compression"),
            c => properties.insert("compression".into(), compression_name(c).into()),
        };
        if format.format == StorageFormat::TextFile {
            properties.insert(
                "skip.header.line.count".into(),
                if format.header { "1" } else { "0" }.into(),
            );
        }
        Table {
            database: self.def.database.clone(),
            name: plan.name.clone(),
            table_type: TableType::External,
            columns,
            partition_keys,
            storage: StorageDescriptor {
                location: plan.root_url.clone(),
                format: format.format,
                serde_properties,
            },
            properties,
            view_sql: None,
            statistics: current.and_then(|t| t.statistics.clone()),
            created_at: String::new(),
            updated_at: String::new(),
        }
    }

    async fn handle_vanished_tables(
        &mut self,
        existing: &[Table],
        seen: &BTreeSet<String>,
    ) -> Result<()> {
        let def = self.def;
        for table in existing {
            let ours = table.properties.get(CRAWLER_PROPERTY) == Some(&def.name)
                && table.storage.location.starts_with(&def.location);
            if !ours || seen.contains(&table.name) {
                continue;
            }
            match def.options.delete_behavior {
                DeleteBehavior::Delete => {
                    self.metastore.drop_table(&table.database, &table.name).await?;
                    self.run.tables_deleted += 1;
                    self.note(format!(
                        "table {} removed: its folder {} holds no data files any more",
                        table.qualified_name(),
                        table.storage.location
                    ));
                }
                DeleteBehavior::Log => self.note(format!(
                    "table {} kept (delete_behavior = log) although its folder {} holds no data files any more",
                    table.qualified_name(),
                    table.storage.location
                )),
            }
        }
        Ok(())
    }
}

fn folder_suffix(segments: &[String]) -> String {
    segments.iter().map(|s| format!("{s}/")).collect()
}

fn location_name(location: &str) -> &str {
    location
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or("table")
}

/// Two tables of one run with the same name get a suffix, as Glue adds a hash.
fn dedup_names(planned: &mut [Planned]) {
    let mut used = BTreeSet::new();
    for p in planned.iter_mut() {
        let mut name = p.name.clone();
        let mut n = 2;
        while !used.insert(name.clone()) {
            name = format!("{}_{n}", p.name);
            n += 1;
        }
        p.name = name;
    }
}

/// The default location of databases the crawler creates: the warehouse as a URL.
pub(crate) fn warehouse_url(warehouse: &std::path::Path) -> Result<String> {
    Ok(normalize_location(&warehouse.to_string_lossy())?)
}
