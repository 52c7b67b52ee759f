//! TLS for ureq from windlass-proto's rustls `ClientConfig`.
//!
//! ureq's own `TlsConfig` has no server-name override and takes keys only
//! as PEM, so the adapter plugs its own link into ureq's connector chain
//! (TCP, then this): the `ClientConfig` windlass-proto builds for every
//! adapter — only the kubeconfig's CA when it names one, the platform's
//! roots otherwise, the client key handed over as DER without a copy in a
//! `String` — and `tls-server-name` as the name the certificate is verified
//! against. A failed handshake comes back as windlass-proto's explained
//! [`TlsError`] (what was trusted, which name was checked).

use std::io::{Read, Write};
use std::sync::Arc;

use rustls::{ClientConfig, ClientConnection, StreamOwned};
use rustls_pki_types::ServerName;
use ureq::unversioned::transport::{
    Buffers, ConnectionDetails, Connector, Either, LazyBuffers, NextTimeout, Transport,
    TransportAdapter,
};
use windlass_proto::config::{TlsDescription, TlsError};

/// The TLS link of the connector chain; a plain-HTTP URL passes through.
#[derive(Clone)]
pub(crate) struct TlsConnector {
    config: Arc<ClientConfig>,
    description: Arc<TlsDescription>,
}

impl std::fmt::Debug for TlsConnector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsConnector")
            .field("server_name", &self.description.server_name)
            .finish_non_exhaustive()
    }
}

impl TlsConnector {
    /// The connector for `description` (HTTP/1.1 only: ureq speaks nothing else).
    pub(crate) fn new(description: TlsDescription) -> Result<Self, TlsError> {
        let mut config = description.client_config()?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Self {
            config: Arc::new(config),
            description: Arc::new(description),
        })
    }

    fn handshake_error(&self, server: &ServerName<'_>, error: std::io::Error) -> ureq::Error {
        // ureq's own error (a handshake past the connect timeout) comes back
        // wrapped in the io::Error rustls saw: unwrap it.
        if error.get_ref().is_some_and(|e| e.is::<ureq::Error>()) {
            let kind = error.kind();
            return match error.into_inner().map(|e| e.downcast::<ureq::Error>()) {
                Some(Ok(ureq)) => *ureq,
                _ => ureq::Error::Io(kind.into()),
            };
        }
        let Some(rustls) = error
            .get_ref()
            .and_then(|e| e.downcast_ref::<rustls::Error>())
        else {
            return ureq::Error::Io(error);
        };
        ureq::Error::Other(Box::new(self.description.explain(server, rustls.clone())))
    }
}

impl<In: Transport> Connector<In> for TlsConnector {
    type Out = Either<In, TlsTransport>;

    fn connect(
        &self,
        details: &ConnectionDetails,
        chained: Option<In>,
    ) -> Result<Option<Self::Out>, ureq::Error> {
        let Some(transport) = chained else {
            return Ok(None);
        };
        if !details.needs_tls() || transport.is_tls() {
            return Ok(Some(Either::A(transport)));
        }
        let host = details.uri.host().unwrap_or_default();
        let server = self
            .description
            .server_name(host)
            .map_err(|e| ureq::Error::Other(Box::new(e)))?;
        let mut connection = ClientConnection::new(self.config.clone(), server.clone())
            .map_err(|e| ureq::Error::Other(Box::new(TlsError::Config(e))))?;
        let mut socket = TransportAdapter::new(transport.boxed(), details.current_time.clone());
        socket.set_timeout(details.timeout);
        connection
            .complete_io(&mut socket)
            .map_err(|e| self.handshake_error(&server, e))?;
        let input = details.config.input_buffer_size();
        let output = details.config.output_buffer_size();
        Ok(Some(Either::B(TlsTransport::new(
            LazyBuffers::new(input, output),
            StreamOwned::new(connection, socket),
            true,
        ))))
    }
}

/// An established TLS connection as a ureq transport: to the API server,
/// or to an https:// proxy (then not `is_tls`: the API server's own
/// handshake still runs inside it).
pub(crate) struct TlsTransport {
    buffers: LazyBuffers,
    stream: StreamOwned<ClientConnection, TransportAdapter>,
    to_server: bool,
}

impl TlsTransport {
    /// `stream` as a transport; `to_server` when its peer is the API server.
    pub(crate) fn new(
        buffers: LazyBuffers,
        stream: StreamOwned<ClientConnection, TransportAdapter>,
        to_server: bool,
    ) -> Self {
        Self {
            buffers,
            stream,
            to_server,
        }
    }
}

impl std::fmt::Debug for TlsTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsTransport")
            .field("inner", &self.stream.sock.inner())
            .finish()
    }
}

impl Transport for TlsTransport {
    fn buffers(&mut self) -> &mut dyn Buffers {
        &mut self.buffers
    }

    fn transmit_output(&mut self, amount: usize, timeout: NextTimeout) -> Result<(), ureq::Error> {
        self.stream.sock.set_timeout(timeout);
        self.stream.write_all(&self.buffers.output()[..amount])?;
        Ok(())
    }

    fn await_input(&mut self, timeout: NextTimeout) -> Result<bool, ureq::Error> {
        self.stream.sock.set_timeout(timeout);
        let read = self.stream.read(self.buffers.input_append_buf())?;
        self.buffers.input_appended(read);
        Ok(read > 0)
    }

    fn is_open(&mut self) -> bool {
        self.stream.sock.get_mut().is_open()
    }

    fn is_tls(&self) -> bool {
        self.to_server
    }
}
