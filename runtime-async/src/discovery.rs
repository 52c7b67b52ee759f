//! Discovery through a [`Client`]: windlass-proto's [`Discoverer`] says
//! which documents to fetch (aggregated `/api` and `/apis`, or the legacy
//! walk); this module sends them, concurrently on the calling task, and
//! hands the answers back.
//! The result answers client-go's REST-mapper questions and makes dynamic
//! [`Api`]s by group/version/kind.

use std::ops::Deref;

use futures_util::future::join_all;
use windlass_proto::discovery::{self as proto, Discoverer, GroupVersionKind};
use windlass_proto::dynamic::DynamicObject;
use windlass_proto::response;
use windlass_proto::retry::RequestKind;

use crate::client::Call;
use crate::runtime::RuntimeClient;
use crate::{Api, Client, Error};

/// What the server serves, discovered through a client (derefs to
/// windlass-proto's [`proto::Discovery`] for the lookups).
#[derive(Clone, Debug)]
pub struct Discovery<C> {
    client: C,
    discovered: proto::Discovery,
}

impl<C: RuntimeClient> Discovery<C> {
    /// Discovers the server's groups and resources: aggregated discovery
    /// (two requests), else the legacy endpoints.
    pub async fn run(client: &C) -> Result<Self, Error> {
        Ok(Self {
            client: client.clone(),
            discovered: walk(client.core(), Discoverer::new()).await?,
        })
    }

    /// Discovers again (after a CRD was created, say).
    pub async fn refresh(&mut self) -> Result<(), Error> {
        self.discovered = walk(self.client.core(), Discoverer::new()).await?;
        Ok(())
    }

    /// The lookups' data.
    pub fn discovered(&self) -> &proto::Discovery {
        &self.discovered
    }

    /// A dynamic API for exactly `gvk`, in `namespace` (`None`: all
    /// namespaces, or a cluster-scoped resource).
    pub fn dynamic(
        &self,
        gvk: &GroupVersionKind,
        namespace: Option<&str>,
    ) -> Result<Api<DynamicObject, C>, Error> {
        let resource = self.discovered.api_resource(gvk)?;
        Api::dynamic(self.client.clone(), resource, namespace)
    }

    /// A dynamic API for `kind` of `group` in its preferred version.
    pub fn dynamic_for_kind(
        &self,
        group: &str,
        kind: &str,
        namespace: Option<&str>,
    ) -> Result<Api<DynamicObject, C>, Error> {
        let resource = self.discovered.api_resource_for_kind(group, kind)?;
        Api::dynamic(self.client.clone(), resource, namespace)
    }
}

impl<C> Deref for Discovery<C> {
    type Target = proto::Discovery;

    fn deref(&self) -> &proto::Discovery {
        &self.discovered
    }
}

/// Runs the walk: send what it asks, all at once, feed the answers back,
/// until it asks for nothing more.
async fn walk(client: &Client, mut walk: Discoverer) -> Result<proto::Discovery, Error> {
    const CALL: Call<'static> = Call {
        verb: "get",
        kind: RequestKind::Get,
        resource: "discovery",
    };
    loop {
        let batch: Vec<_> = std::iter::from_fn(|| walk.poll_request()).collect();
        if batch.is_empty() {
            return Ok(walk.finish()?);
        }
        let answers =
            join_all(batch.into_iter().map(|(id, request)| async move {
                (id, client.send_for_bytes(request, CALL).await)
            }))
            .await;
        for (id, answer) in answers {
            match answer {
                Ok((head, body)) => walk.handle_response(id, head.status, &head.headers, &body)?,
                Err(Error::Response(response::Error::Api(api))) => walk.handle_error(id, *api)?,
                Err(e) => return Err(e),
            }
        }
    }
}
