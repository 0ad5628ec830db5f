//! Connector catalogs on workers. Plans carry only a catalog's name and version; a worker
//! asks the coordinator for the definition (credentials included) over the cluster's
//! authenticated channel, an Arrow Flight action on the scheduler's port, and keeps the
//! pool it builds from it.
//!
//! ```text
//!  worker: RemoteScanExec ─► ConnectorRegistry ─► FlightCatalogResolver
//!                                                   │ do_action("quarry.catalog.v1", name)
//!  coordinator: CatalogFlightService ◄──────────────┘ (cluster token checked first)
//!                 └► the engine's resolver (metastore, master key)
//! ```

use std::pin::Pin;
use std::sync::Arc;

use arrow_flight::flight_service_client::FlightServiceClient;
use arrow_flight::flight_service_server::FlightService;
use arrow_flight::{
    Action, ActionType, Criteria, Empty, FlightData, FlightDescriptor, FlightInfo,
    HandshakeRequest, HandshakeResponse, PollInfo, PutResult, SchemaResult, Ticket,
};
use async_trait::async_trait;
use futures::Stream;
use quarry_connectors::{CatalogConfig, CatalogResolver, CatalogWire, ConnectorError};
use tonic::transport::Endpoint;
use tonic::{Request, Response, Status, Streaming};

use crate::cluster::ClusterSecret;

/// The Flight action that returns a catalog's definition.
pub const CATALOG_ACTION: &str = "quarry.catalog.v1";

type Boxed<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

/// The coordinator's side: answers [`CATALOG_ACTION`] from the engine's resolver. Serve it
/// only behind [`ClusterSecret::interceptor`].
#[derive(Debug)]
pub struct CatalogFlightService {
    resolver: Arc<dyn CatalogResolver>,
}

impl CatalogFlightService {
    pub fn new(resolver: Arc<dyn CatalogResolver>) -> Self {
        Self { resolver }
    }
}

fn unsupported<T>() -> Result<T, Status> {
    Err(Status::unimplemented(
        "this Flight service only answers quarry.catalog.v1",
    ))
}

#[async_trait]
impl FlightService for CatalogFlightService {
    type HandshakeStream = Boxed<HandshakeResponse>;
    type ListFlightsStream = Boxed<FlightInfo>;
    type DoGetStream = Boxed<FlightData>;
    type DoPutStream = Boxed<PutResult>;
    type DoExchangeStream = Boxed<FlightData>;
    type DoActionStream = Boxed<arrow_flight::Result>;
    type ListActionsStream = Boxed<ActionType>;

    async fn handshake(
        &self,
        _: Request<Streaming<HandshakeRequest>>,
    ) -> Result<Response<Self::HandshakeStream>, Status> {
        unsupported()
    }

    async fn list_flights(
        &self,
        _: Request<Criteria>,
    ) -> Result<Response<Self::ListFlightsStream>, Status> {
        unsupported()
    }

    async fn get_flight_info(
        &self,
        _: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        unsupported()
    }

    async fn poll_flight_info(
        &self,
        _: Request<FlightDescriptor>,
    ) -> Result<Response<PollInfo>, Status> {
        unsupported()
    }

    async fn get_schema(
        &self,
        _: Request<FlightDescriptor>,
    ) -> Result<Response<SchemaResult>, Status> {
        unsupported()
    }

    async fn do_get(&self, _: Request<Ticket>) -> Result<Response<Self::DoGetStream>, Status> {
        unsupported()
    }

    async fn do_put(
        &self,
        _: Request<Streaming<FlightData>>,
    ) -> Result<Response<Self::DoPutStream>, Status> {
        unsupported()
    }

    async fn do_exchange(
        &self,
        _: Request<Streaming<FlightData>>,
    ) -> Result<Response<Self::DoExchangeStream>, Status> {
        unsupported()
    }

    async fn do_action(
        &self,
        request: Request<Action>,
    ) -> Result<Response<Self::DoActionStream>, Status> {
        let action = request.into_inner();
        if action.r#type != CATALOG_ACTION {
            return unsupported();
        }
        let name = String::from_utf8(action.body.to_vec())
            .map_err(|_| Status::invalid_argument("a catalog name is UTF-8"))?;
        let config = self.resolver.resolve(&name).await.map_err(|e| match e {
            ConnectorError::CatalogNotFound(_) => Status::not_found(e.to_string()),
            other => Status::internal(other.to_string()),
        })?;
        let body = serde_json::to_vec(&config.to_wire())
            .map_err(|e| Status::internal(format!("cannot encode catalog {name}: {e}")))?;
        let result = arrow_flight::Result { body: body.into() };
        Ok(Response::new(Box::pin(futures::stream::iter([Ok(result)]))))
    }

    async fn list_actions(
        &self,
        _: Request<Empty>,
    ) -> Result<Response<Self::ListActionsStream>, Status> {
        let action = ActionType {
            r#type: CATALOG_ACTION.to_string(),
            description: "the definition of a connector catalog, for workers".to_string(),
        };
        Ok(Response::new(Box::pin(futures::stream::iter([Ok(action)]))))
    }
}

/// The worker's side: asks the coordinator.
#[derive(Debug)]
pub struct FlightCatalogResolver {
    coordinator: String,
    secret: ClusterSecret,
}

impl FlightCatalogResolver {
    pub fn new(coordinator_host: &str, coordinator_port: u16, secret: ClusterSecret) -> Self {
        Self {
            coordinator: format!("http://{coordinator_host}:{coordinator_port}"),
            secret,
        }
    }
}

#[async_trait]
impl CatalogResolver for FlightCatalogResolver {
    async fn resolve(&self, catalog: &str) -> quarry_connectors::Result<CatalogConfig> {
        let fail = |e: String| {
            ConnectorError::Resolve(format!(
                "catalog \"{catalog}\": cannot get its definition from the coordinator at {}: {e}",
                self.coordinator
            ))
        };
        let endpoint =
            Endpoint::from_shared(self.coordinator.clone()).map_err(|e| fail(e.to_string()))?;
        let endpoint =
            (self.secret.endpoint_override())(endpoint).map_err(|e| fail(e.to_string()))?;
        let channel = endpoint.connect().await.map_err(|e| fail(e.to_string()))?;
        let mut client = FlightServiceClient::new(channel);
        let action = Action {
            r#type: CATALOG_ACTION.to_string(),
            body: catalog.as_bytes().to_vec().into(),
        };
        let mut results = client.do_action(action).await.map_err(|status| {
            if status.code() == tonic::Code::NotFound {
                ConnectorError::CatalogNotFound(catalog.to_string())
            } else {
                fail(status.message().to_string())
            }
        })?;
        let first = results
            .get_mut()
            .message()
            .await
            .map_err(|e| fail(e.message().to_string()))?
            .ok_or_else(|| fail("the coordinator sent no definition".to_string()))?;
        let wire: CatalogWire =
            serde_json::from_slice(&first.body).map_err(|e| fail(e.to_string()))?;
        Ok(CatalogConfig::from_wire(wire))
    }
}
