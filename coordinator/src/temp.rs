//! Session-scoped temporary tables (`CREATE TEMP TABLE ... AS`, `SELECT ... INTO TEMP`).
//!
//! They are DataFusion `MemTable`s in a schema `pg_temp` that only this session's catalog
//! list shows: [`SessionCatalogs`] wraps the engine's list and adds it to catalog
//! `quarry` (with this session's own `pg_catalog`, whose listings then include them).
//! As in PostgreSQL, an unqualified name finds a temporary table before a table of the
//! current database: [`TempTables::qualify`] rewrites such names to `pg_temp.name`
//! before planning. They live in the coordinator's memory, so a query reading one runs
//! there (the cluster planner sends only metastore tables to workers), and they go with
//! the session.

use std::collections::HashSet;
use std::ops::ControlFlow;
use std::sync::{Arc, RwLock, Weak};

use datafusion::catalog::{
    CatalogProvider, CatalogProviderList, MemorySchemaProvider, SchemaProvider,
};
use datafusion::datasource::MemTable;
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::logical_expr::{CreateMemoryTable, LogicalPlan};
use datafusion::sql::parser::Statement as DfStatement;
use datafusion::sql::sqlparser::ast::{
    Ident, ObjectName, ObjectNamePart, OnCommit, Query, SetExpr, Statement, Visit, Visitor,
    visit_relations_mut,
};

use quarry_metastore::Metastore;

use crate::catalog::QUARRY_CATALOG;
use crate::session::Output;
use crate::{CoordinatorError, Result};

/// The schema of catalog `quarry` that holds a session's temporary tables.
pub const TEMP_SCHEMA: &str = "pg_temp";

/// One session's temporary tables.
#[derive(Debug, Clone)]
pub(crate) struct TempTables {
    schema: Arc<MemorySchemaProvider>,
}

impl TempTables {
    pub(crate) fn new() -> Self {
        Self {
            schema: Arc::new(MemorySchemaProvider::new()),
        }
    }

    pub(crate) fn exists(&self, name: &str) -> bool {
        self.schema.table_exist(name)
    }

    /// Drops a temporary table; false when there is none of that name. Quarry's DDL
    /// parser folds names to lower case, quoted ones too (Hive's names have no case), so
    /// a quoted `"#Tableau_1"` arrives as `#tableau_1`: the one temporary table whose name
    /// differs from it only in case is dropped then.
    pub(crate) fn drop_table(&self, name: &str) -> Result<bool> {
        if self.schema.deregister_table(name)?.is_some() {
            return Ok(true);
        }
        let names = self.schema.table_names();
        let mut same = names.iter().filter(|n| n.to_lowercase() == name);
        match (same.next(), same.next()) {
            (Some(only), None) => Ok(self.schema.deregister_table(only)?.is_some()),
            _ => Ok(false),
        }
    }

    /// Prepares a statement for planning: `CREATE TEMP TABLE t` and `SELECT ... INTO TEMP t`
    /// create `pg_temp.t` (which DataFusion plans as an in-memory table), and unqualified
    /// names of temporary tables (not those of a WITH query) become `pg_temp.name`.
    pub(crate) fn qualify(&self, statement: &mut DfStatement) -> Result<()> {
        let DfStatement::Statement(statement) = statement else {
            return Ok(());
        };
        match statement.as_mut() {
            Statement::CreateTable(create) if create.temporary => {
                create.temporary = false;
                create.name = temp_name(&create.name)?;
                // PostgreSQL accepts and ignores LOCAL and GLOBAL (Tableau says LOCAL).
                create.global = None;
                match create.on_commit.take() {
                    None | Some(OnCommit::PreserveRows) => {}
                    Some(other) => {
                        let clause = match other {
                            OnCommit::DeleteRows => "DELETE ROWS",
                            _ => "DROP",
                        };
                        return Err(CoordinatorError::Unsupported(format!(
                            "ON COMMIT {clause}: a temporary table keeps its rows until it is \
                             dropped or the session ends (ON COMMIT PRESERVE ROWS)"
                        )));
                    }
                }
            }
            Statement::Query(query) => {
                if let SetExpr::Select(select) = query.body.as_mut()
                    && let Some(into) = select.into.as_mut()
                    && into.temporary
                {
                    into.temporary = false;
                    into.name = temp_name(&into.name)?;
                }
            }
            _ => {}
        }
        let names = self.schema.table_names();
        if names.is_empty() {
            return Ok(());
        }
        let mut ctes = WithNames::default();
        let _ = statement.visit(&mut ctes);
        let _ = visit_relations_mut(statement.as_mut(), |name: &mut ObjectName| {
            if let [ObjectNamePart::Identifier(ident)] = name.0.as_slice() {
                let folded = folded(ident);
                if names.contains(&folded) && !ctes.0.contains(&folded) {
                    *name = ObjectName::from(vec![Ident::new(TEMP_SCHEMA), ident.clone()]);
                }
            }
            ControlFlow::<()>::Continue(())
        });
        Ok(())
    }

    /// Runs the in-memory CREATE TABLE planned from a temporary one: the query's rows are
    /// read (here or on the cluster) and kept in this session's memory.
    pub(crate) async fn create(
        &self,
        ctx: &datafusion::prelude::SessionContext,
        create: &CreateMemoryTable,
    ) -> Result<Output> {
        let name = create.name.table().to_string();
        let has_query =
            !matches!(create.input.as_ref(), LogicalPlan::EmptyRelation(e) if !e.produce_one_row);
        if self.exists(&name) {
            if create.if_not_exists {
                return Ok(Output::Done("CREATE TABLE".into()));
            }
            if !create.or_replace {
                return Err(CoordinatorError::Invalid(format!(
                    "relation \"{name}\" already exists"
                )));
            }
        }
        let df = ctx
            .execute_logical_plan(create.input.as_ref().clone())
            .await?;
        let schema = Arc::new(df.schema().as_arrow().clone());
        let mut partitions = df.collect_partitioned().await?;
        let rows: usize = partitions.iter().flatten().map(|b| b.num_rows()).sum();
        if partitions.is_empty() {
            partitions.push(vec![]);
        }
        let table = MemTable::try_new(schema, partitions)?;
        self.schema.deregister_table(&name)?;
        self.schema.register_table(name, Arc::new(table))?;
        Ok(Output::Done(if has_query {
            format!("SELECT {rows}")
        } else {
            "CREATE TABLE".into()
        }))
    }
}

/// Whether a planned in-memory table is a temporary one (named into `pg_temp`).
pub(crate) fn is_temp(create: &CreateMemoryTable) -> bool {
    create.name.schema() == Some(TEMP_SCHEMA)
}

/// An identifier as the planner folds it.
fn folded(ident: &Ident) -> String {
    match ident.quote_style {
        Some(_) => ident.value.clone(),
        None => ident.value.to_lowercase(),
    }
}

/// `t` or `pg_temp.t` as `pg_temp.t`; PostgreSQL refuses other schemas for a temporary table.
fn temp_name(name: &ObjectName) -> Result<ObjectName> {
    match name.0.as_slice() {
        [ObjectNamePart::Identifier(table)] => Ok(ObjectName::from(vec![
            Ident::new(TEMP_SCHEMA),
            table.clone(),
        ])),
        [
            ObjectNamePart::Identifier(schema),
            ObjectNamePart::Identifier(_),
        ] if folded(schema) == TEMP_SCHEMA => Ok(name.clone()),
        _ => Err(CoordinatorError::Invalid(format!(
            "cannot create temporary relation {name} in a database: a temporary table's \
             name has no database"
        ))),
    }
}

/// Names of WITH queries anywhere in a statement: they hide tables of the same name.
#[derive(Default)]
struct WithNames(HashSet<String>);

impl Visitor for WithNames {
    type Break = ();

    fn pre_visit_query(&mut self, query: &Query) -> ControlFlow<()> {
        if let Some(with) = &query.with {
            for cte in &with.cte_tables {
                self.0.insert(folded(&cte.alias.name));
            }
        }
        ControlFlow::Continue(())
    }
}

/// The engine's catalogs as one session sees them: catalog `quarry` also holds this
/// session's `pg_temp` and `pg_catalog`.
#[derive(Debug)]
pub(crate) struct SessionCatalogs {
    inner: Arc<dyn CatalogProviderList>,
    quarry: Arc<SessionCatalog>,
}

impl SessionCatalogs {
    pub(crate) fn new(
        inner: Arc<dyn CatalogProviderList>,
        temp: &TempTables,
        metastore: Metastore,
    ) -> Arc<Self> {
        Arc::new_cyclic(|this: &Weak<SessionCatalogs>| {
            let session_catalogs: Weak<dyn CatalogProviderList> = this.clone();
            let quarry = Arc::new(SessionCatalog {
                inner: inner.catalog(QUARRY_CATALOG),
                session_catalogs,
                metastore,
                temp: Arc::clone(&temp.schema),
                pg_catalog: RwLock::default(),
            });
            Self { inner, quarry }
        })
    }
}

impl CatalogProviderList for SessionCatalogs {
    fn register_catalog(
        &self,
        name: String,
        catalog: Arc<dyn CatalogProvider>,
    ) -> Option<Arc<dyn CatalogProvider>> {
        self.inner.register_catalog(name, catalog)
    }

    fn catalog_names(&self) -> Vec<String> {
        self.inner.catalog_names()
    }

    fn catalog(&self, name: &str) -> Option<Arc<dyn CatalogProvider>> {
        if name == QUARRY_CATALOG && self.quarry.inner.is_some() {
            return Some(Arc::clone(&self.quarry) as Arc<dyn CatalogProvider>);
        }
        self.inner.catalog(name)
    }
}

#[derive(Debug)]
struct SessionCatalog {
    inner: Option<Arc<dyn CatalogProvider>>,
    /// The session's catalogs (these), which pg_catalog's overlay walks as the library does.
    session_catalogs: Weak<dyn CatalogProviderList>,
    /// Where pg_catalog's overlay reads users (pg_roles) from.
    metastore: Metastore,
    temp: Arc<MemorySchemaProvider>,
    /// This session's pg_catalog: it lists what this session sees, temporary tables too.
    pg_catalog: RwLock<Option<Arc<dyn SchemaProvider>>>,
}

impl SessionCatalog {
    fn inner(&self) -> &Arc<dyn CatalogProvider> {
        self.inner
            .as_ref()
            .expect("the session catalog wraps catalog quarry")
    }
}

impl CatalogProvider for SessionCatalog {
    fn schema_names(&self) -> Vec<String> {
        let mut names = self.inner().schema_names();
        if self.pg_catalog.read().expect("pg_catalog lock").is_some()
            && !names.iter().any(|n| n == "pg_catalog")
        {
            names.push("pg_catalog".into());
        }
        if !self.temp.table_names().is_empty() {
            names.push(TEMP_SCHEMA.into());
        }
        names
    }

    fn schema(&self, name: &str) -> Option<Arc<dyn SchemaProvider>> {
        if name == TEMP_SCHEMA {
            return Some(Arc::clone(&self.temp) as Arc<dyn SchemaProvider>);
        }
        if name == "pg_catalog"
            && let Some(schema) = self.pg_catalog.read().expect("pg_catalog lock").as_ref()
        {
            return Some(Arc::clone(schema));
        }
        self.inner().schema(name)
    }

    fn register_schema(
        &self,
        name: &str,
        schema: Arc<dyn SchemaProvider>,
    ) -> DfResult<Option<Arc<dyn SchemaProvider>>> {
        if name == "pg_catalog" {
            // As the engine's catalog does: Quarry's table OIDs and type modifiers.
            let schema = Arc::new(crate::pg_overlay::PgCatalogOverlay::new(
                schema,
                self.session_catalogs.clone(),
                self.metastore.clone(),
            ));
            return Ok(self
                .pg_catalog
                .write()
                .expect("pg_catalog lock")
                .replace(schema));
        }
        if name == TEMP_SCHEMA {
            return Err(DataFusionError::Plan(format!(
                "schema {TEMP_SCHEMA} holds this session's temporary tables"
            )));
        }
        self.inner().register_schema(name, schema)
    }
}
