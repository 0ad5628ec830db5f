//! The worker's task service behind the cluster secret.
//!
//! The scheduler launches, cancels and stops a worker's tasks, and removes a finished job's
//! shuffle files, through the worker's executor gRPC service. Ballista 55 builds that service
//! inside `start_executor_process` with no hook for an interceptor, so on its own anyone who
//! reaches the port could run plans on the worker or stop it. Quarry therefore binds
//! Ballista's service to a loopback address of the worker's own host and serves, on the
//! address the worker advertises, a gate: the same gRPC service, refusing calls without the
//! cluster secret and forwarding the others to Ballista's.
//!
//! What remains open: processes on the worker's own host can reach Ballista's service on
//! its loopback address.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener};

use ballista_core::serde::protobuf::executor_grpc_client::ExecutorGrpcClient;
use ballista_core::serde::protobuf::executor_grpc_server::{ExecutorGrpc, ExecutorGrpcServer};
use ballista_core::serde::protobuf::{
    CancelTasksParams, CancelTasksResult, LaunchMultiTaskParams, LaunchMultiTaskResult,
    LaunchTaskParams, LaunchTaskResult, RemoveJobDataParams, RemoveJobDataResult,
    StopExecutorParams, StopExecutorResult,
};
use ballista_core::utils::{GrpcServerConfig, create_grpc_server, create_grpc_server_incoming};
use tokio::task::JoinHandle;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, Endpoint};
use tonic::{Request, Response, Status};

use crate::cluster::ClusterSecret;

/// Where Ballista's own executor service listens, and where the gate listens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TaskServiceAddresses {
    /// The address the worker advertises: the gate.
    pub public: SocketAddr,
    /// A loopback address of this host, with the same port: Ballista's service (Ballista
    /// binds the port it advertises, so only the host part can differ).
    pub private: SocketAddr,
}

impl TaskServiceAddresses {
    /// A port free on both `listen` and a loopback address other than `listen`.
    pub fn pick(listen: IpAddr) -> Result<Self, String> {
        if listen.is_unspecified() {
            return Err(format!(
                "--listen {listen} is not an address other workers and the coordinator can \
                 connect to: give this host's address on the cluster's network"
            ));
        }
        let private_ip = IpAddr::V4(if listen == IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2)) {
            Ipv4Addr::new(127, 0, 0, 3)
        } else if listen.is_loopback() {
            Ipv4Addr::new(127, 0, 0, 2)
        } else {
            Ipv4Addr::LOCALHOST
        });
        let mut last_error = String::new();
        // Another process may take the port between the two binds: try a few.
        for _ in 0..16 {
            let public = TcpListener::bind((listen, 0))
                .and_then(|l| l.local_addr())
                .map_err(|e| format!("cannot bind {listen}: {e}"))?;
            let private = SocketAddr::new(private_ip, public.port());
            match TcpListener::bind(private) {
                Ok(_) => return Ok(Self { public, private }),
                Err(e) => last_error = format!("cannot bind {private}: {e}"),
            }
        }
        Err(last_error)
    }
}

/// Serves the gate on `addresses.public` until the returned task is aborted or fails. The
/// port is bound when this returns (the scheduler calls back as soon as a worker registers).
pub fn serve_gate(
    addresses: TaskServiceAddresses,
    secret: &ClusterSecret,
    max_message_size: usize,
) -> Result<JoinHandle<Result<(), String>>, String> {
    let config = GrpcServerConfig::default();
    let incoming = create_grpc_server_incoming(addresses.public, &config)
        .map_err(|e| format!("cannot bind the task service on {}: {e}", addresses.public))?;
    let backend = Endpoint::from_shared(format!("http://{}", addresses.private))
        .map_err(|e| e.to_string())?
        .connect_lazy();
    let gate = Gate {
        backend: ExecutorGrpcClient::new(backend)
            .max_decoding_message_size(max_message_size)
            .max_encoding_message_size(max_message_size),
    };
    let service = InterceptedService::new(
        ExecutorGrpcServer::new(gate)
            .max_decoding_message_size(max_message_size)
            .max_encoding_message_size(max_message_size),
        secret.interceptor(),
    );
    Ok(tokio::spawn(async move {
        create_grpc_server(&config)
            .add_service(service)
            .serve_with_incoming(incoming)
            .await
            .map_err(|e| format!("the worker's task service stopped: {e}"))
    }))
}

/// Forwards each call the interceptor let through to Ballista's executor service.
struct Gate {
    backend: ExecutorGrpcClient<Channel>,
}

#[tonic::async_trait]
impl ExecutorGrpc for Gate {
    async fn launch_task(
        &self,
        request: Request<LaunchTaskParams>,
    ) -> Result<Response<LaunchTaskResult>, Status> {
        self.backend.clone().launch_task(request.into_inner()).await
    }

    async fn launch_multi_task(
        &self,
        request: Request<LaunchMultiTaskParams>,
    ) -> Result<Response<LaunchMultiTaskResult>, Status> {
        self.backend
            .clone()
            .launch_multi_task(request.into_inner())
            .await
    }

    async fn stop_executor(
        &self,
        request: Request<StopExecutorParams>,
    ) -> Result<Response<StopExecutorResult>, Status> {
        self.backend
            .clone()
            .stop_executor(request.into_inner())
            .await
    }

    async fn cancel_tasks(
        &self,
        request: Request<CancelTasksParams>,
    ) -> Result<Response<CancelTasksResult>, Status> {
        self.backend
            .clone()
            .cancel_tasks(request.into_inner())
            .await
    }

    async fn remove_job_data(
        &self,
        request: Request<RemoveJobDataParams>,
    ) -> Result<Response<RemoveJobDataResult>, Status> {
        self.backend
            .clone()
            .remove_job_data(request.into_inner())
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_private_address_is_loopback_and_differs_from_the_public_one() {
        let loopback = TaskServiceAddresses::pick("127.0.0.1".parse().unwrap()).unwrap();
        assert_eq!(loopback.private.ip().to_string(), "127.0.0.2");
        assert_eq!(loopback.public.port(), loopback.private.port());
        let second = TaskServiceAddresses::pick("127.0.0.2".parse().unwrap()).unwrap();
        assert_eq!(second.private.ip().to_string(), "127.0.0.3");
        let error = TaskServiceAddresses::pick("0.0.0.0".parse().unwrap()).unwrap_err();
        assert!(error.contains("--listen 0.0.0.0"), "{error}");
    }
}
