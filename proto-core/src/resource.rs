//! What the request layer needs to know about a kind of resource to address
//! it: group, version, kind, plural and scope, and the URL paths they make.
//!
//! This module owns [`ApiResource`] (built from k8s-openapi's
//! [`k8s_openapi::Resource`] trait, or by hand for resources known only at run
//! time), [`Scope`] and the path rules: the core group lives under `/api/v1`,
//! named groups under `/apis/<group>/<version>`; namespaced resources add
//! `namespaces/<ns>/`, cluster-scoped ones do not, and a namespaced collection
//! addressed without a namespace is the all-namespaces collection. It also
//! owns client-go's path-segment rule ([`validate_path_segment`]). It does not
//! build requests (that is [`crate::request`]) and does no discovery.
//!
//! ```
//! use k8s_openapi::api::apps::v1::Deployment;
//! use windlass_proto::resource::{ApiResource, Scope};
//!
//! let deployments = ApiResource::of::<Deployment>();
//! assert_eq!(deployments.api_version, "apps/v1");
//! assert_eq!(deployments.collection_path(Some("default")).unwrap(),
//!            "/apis/apps/v1/namespaces/default/deployments");
//!
//! let foos = ApiResource::new("example.com", "v1", "Foo", "foos", Scope::Cluster);
//! assert_eq!(foos.object_path(None, "bar").unwrap(), "/apis/example.com/v1/foos/bar");
//! ```

use std::fmt::Write as _;

/// Whether objects of a resource live in a namespace.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Scope {
    /// Objects live in a namespace (`/namespaces/<ns>/<plural>`).
    Namespaced,
    /// Objects are cluster-wide (`/<plural>`).
    Cluster,
}

/// The scope of a k8s-openapi type that can be addressed on its own.
///
/// Implemented for [`k8s_openapi::NamespaceResourceScope`] and
/// [`k8s_openapi::ClusterResourceScope`] only: a type whose scope is
/// [`k8s_openapi::SubResourceScope`] (such as `Scale` or `Eviction`) has no
/// collection of its own, so [`ApiResource::of`] does not accept it.
pub trait TopLevelScope: k8s_openapi::ResourceScope {
    /// The scope as a value.
    const SCOPE: Scope;
}

impl TopLevelScope for k8s_openapi::NamespaceResourceScope {
    const SCOPE: Scope = Scope::Namespaced;
}

impl TopLevelScope for k8s_openapi::ClusterResourceScope {
    const SCOPE: Scope = Scope::Cluster;
}

/// A resource as the API server addresses it: group, version, kind, plural and scope.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ApiResource {
    /// The API group; empty for the core (legacy) group.
    pub group: String,
    /// The version, e.g. `v1`.
    pub version: String,
    /// `group/version`, or `version` alone for the core group — the `apiVersion` field.
    pub api_version: String,
    /// The kind, e.g. `Pod`.
    pub kind: String,
    /// The plural resource name used in paths, e.g. `pods`.
    pub plural: String,
    /// Whether objects live in a namespace.
    pub scope: Scope,
}

impl ApiResource {
    /// The resource of a k8s-openapi type.
    pub fn of<K>() -> Self
    where
        K: k8s_openapi::Resource,
        K::Scope: TopLevelScope,
    {
        Self {
            group: K::GROUP.to_owned(),
            version: K::VERSION.to_owned(),
            api_version: K::API_VERSION.to_owned(),
            kind: K::KIND.to_owned(),
            plural: K::URL_PATH_SEGMENT.to_owned(),
            scope: <K::Scope as TopLevelScope>::SCOPE,
        }
    }

    /// A resource known only at run time (a custom resource, or one found by discovery).
    pub fn new(
        group: impl Into<String>,
        version: impl Into<String>,
        kind: impl Into<String>,
        plural: impl Into<String>,
        scope: Scope,
    ) -> Self {
        let group = group.into();
        let version = version.into();
        let api_version = api_version(&group, &version);
        Self {
            group,
            version,
            api_version,
            kind: kind.into(),
            plural: plural.into(),
            scope,
        }
    }

    /// A resource from an `apiVersion` as objects and discovery spell it
    /// (`apps/v1`, or `v1` for the core group).
    pub fn from_api_version(
        api_version: &str,
        kind: impl Into<String>,
        plural: impl Into<String>,
        scope: Scope,
    ) -> Self {
        let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
        Self::new(group, version, kind, plural, scope)
    }

    /// Whether objects of this resource live in a namespace.
    pub fn is_namespaced(&self) -> bool {
        self.scope == Scope::Namespaced
    }

    /// The root of the group-version: `/api/v1` for the core group,
    /// `/apis/<group>/<version>` otherwise.
    pub fn group_version_path(&self) -> String {
        let mut path = String::new();
        if self.group.is_empty() {
            path.push_str("/api");
        } else {
            path.push_str("/apis");
            push_segment(&mut path, &self.group);
        }
        push_segment(&mut path, &self.version);
        path
    }

    /// The path of the collection: in `namespace` for a namespaced resource,
    /// across all namespaces when `namespace` is `None`.
    ///
    /// A namespace on a cluster-scoped resource, or a namespace or plural that
    /// is not a valid path segment, is an error.
    pub fn collection_path(&self, namespace: Option<&str>) -> Result<String, PathError> {
        if self.plural.is_empty() {
            return Err(PathError::Empty(Segment::Resource));
        }
        validate_path_segment(Segment::Resource, &self.plural)?;
        let mut path = self.group_version_path();
        match (self.scope, namespace) {
            (Scope::Cluster, Some(ns)) => {
                return Err(PathError::NamespaceOnClusterScoped {
                    plural: self.plural.clone(),
                    namespace: ns.to_owned(),
                });
            }
            (Scope::Namespaced, Some(ns)) => {
                if ns.is_empty() {
                    return Err(PathError::Empty(Segment::Namespace));
                }
                validate_path_segment(Segment::Namespace, ns)?;
                path.push_str("/namespaces");
                push_segment(&mut path, ns);
            }
            (_, None) => {}
        }
        push_segment(&mut path, &self.plural);
        Ok(path)
    }

    /// The path of one object. A namespaced resource needs its namespace.
    pub fn object_path(&self, namespace: Option<&str>, name: &str) -> Result<String, PathError> {
        if self.scope == Scope::Namespaced && namespace.is_none() {
            return Err(PathError::NamespaceRequired {
                plural: self.plural.clone(),
            });
        }
        let mut path = self.collection_path(namespace)?;
        if name.is_empty() {
            return Err(PathError::Empty(Segment::Name));
        }
        validate_path_segment(Segment::Name, name)?;
        push_segment(&mut path, name);
        Ok(path)
    }

    /// The path of a subresource of one object, e.g. `.../pods/web-0/log`.
    pub fn subresource_path(
        &self,
        namespace: Option<&str>,
        name: &str,
        subresource: &str,
    ) -> Result<String, PathError> {
        let mut path = self.object_path(namespace, name)?;
        if subresource.is_empty() {
            return Err(PathError::Empty(Segment::Subresource));
        }
        validate_path_segment(Segment::Subresource, subresource)?;
        push_segment(&mut path, subresource);
        Ok(path)
    }
}

/// `group/version`, or `version` alone for the core group.
pub fn api_version(group: &str, version: &str) -> String {
    if group.is_empty() {
        version.to_owned()
    } else {
        format!("{group}/{version}")
    }
}

/// Appends `/` and `segment`, percent-encoding what Go's `url.PathEscape`
/// would (everything but letters, digits, `-._~` and `$&+,:;=@`), so that an
/// unusual but valid name still makes a valid URI.
fn push_segment(path: &mut String, segment: &str) {
    path.push('/');
    for byte in segment.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~$&+,:;=@".contains(&byte) {
            path.push(char::from(byte));
        } else {
            let _ = write!(path, "%{byte:02X}");
        }
    }
}

/// Which part of a path a segment is, for error messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Segment {
    /// A namespace.
    Namespace,
    /// An object name.
    Name,
    /// A plural resource name.
    Resource,
    /// A subresource name.
    Subresource,
}

impl Segment {
    fn as_str(self) -> &'static str {
        match self {
            Self::Namespace => "namespace",
            Self::Name => "resource name",
            Self::Resource => "resource",
            Self::Subresource => "subresource",
        }
    }
}

impl std::fmt::Display for Segment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A path that cannot be built.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    /// An empty name, namespace or subresource (client-go: "resource name may not be empty").
    #[error("{0} may not be empty")]
    Empty(Segment),
    /// A segment that would change the path: `.`, `..`, or one containing `/` or `%`.
    #[error("invalid {segment} {value:?}: {problem}")]
    InvalidSegment {
        /// Which segment.
        segment: Segment,
        /// The value given.
        value: String,
        /// What is wrong with it, in apimachinery's words.
        problem: &'static str,
    },
    /// An object of a namespaced resource addressed without a namespace.
    #[error("{plural} is namespaced: a namespace is required to address one object")]
    NamespaceRequired {
        /// The resource.
        plural: String,
    },
    /// A namespace given for a cluster-scoped resource.
    #[error("{plural} is cluster-scoped: namespace {namespace:?} cannot be used")]
    NamespaceOnClusterScoped {
        /// The resource.
        plural: String,
        /// The namespace given.
        namespace: String,
    },
}

/// apimachinery's `IsValidPathSegmentName`, which client-go applies to
/// namespaces, names, resources and subresources: a segment may not be `.` or
/// `..` and may not contain `/` or `%`.
pub fn validate_path_segment(segment: Segment, value: &str) -> Result<(), PathError> {
    let problem = match value {
        "." => Some("may not be '.'"),
        ".." => Some("may not be '..'"),
        _ if value.contains('/') => Some("may not contain '/'"),
        _ if value.contains('%') => Some("may not contain '%'"),
        _ => None,
    };
    match problem {
        Some(problem) => Err(PathError::InvalidSegment {
            segment,
            value: value.to_owned(),
            problem,
        }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{Node, Pod};
    use k8s_openapi::api::rbac::v1::ClusterRole;

    #[test]
    fn resource_of_typed_kinds_reads_group_version_plural_and_scope() {
        let pods = ApiResource::of::<Pod>();
        assert_eq!(
            (
                pods.group.as_str(),
                pods.version.as_str(),
                pods.api_version.as_str()
            ),
            ("", "v1", "v1")
        );
        assert_eq!((pods.kind.as_str(), pods.plural.as_str()), ("Pod", "pods"));
        assert_eq!(pods.scope, Scope::Namespaced);
        let nodes = ApiResource::of::<Node>();
        assert_eq!(nodes.scope, Scope::Cluster);
        let roles = ApiResource::of::<ClusterRole>();
        assert_eq!(roles.api_version, "rbac.authorization.k8s.io/v1");
        assert_eq!(roles.scope, Scope::Cluster);
    }

    #[test]
    fn resource_paths_for_core_and_named_groups_in_every_scope() {
        let pods = ApiResource::of::<Pod>();
        assert_eq!(pods.collection_path(None).unwrap(), "/api/v1/pods");
        assert_eq!(
            pods.collection_path(Some("kube-system")).unwrap(),
            "/api/v1/namespaces/kube-system/pods"
        );
        assert_eq!(
            pods.subresource_path(Some("ns"), "web-0", "log").unwrap(),
            "/api/v1/namespaces/ns/pods/web-0/log"
        );
        let nodes = ApiResource::of::<Node>();
        assert_eq!(nodes.object_path(None, "n1").unwrap(), "/api/v1/nodes/n1");
        let crd = ApiResource::new("flops", "v1alpha1", "Flip", "flips", Scope::Namespaced);
        assert_eq!(
            ApiResource::from_api_version("flops/v1alpha1", "Flip", "flips", Scope::Namespaced),
            crd
        );
        assert_eq!(
            ApiResource::from_api_version("v1", "Pod", "pods", Scope::Namespaced),
            pods
        );
        assert_eq!(crd.api_version, "flops/v1alpha1");
        assert_eq!(
            crd.subresource_path(Some("mops"), "mips", "fin").unwrap(),
            "/apis/flops/v1alpha1/namespaces/mops/flips/mips/fin"
        );
    }

    #[test]
    fn validation_rejects_bad_path_segments_and_scope_mismatches() {
        let pods = ApiResource::of::<Pod>();
        assert_eq!(
            pods.object_path(Some("ns"), ""),
            Err(PathError::Empty(Segment::Name))
        );
        for (bad, problem) in [
            ("a/b", "may not contain '/'"),
            ("a%2F", "may not contain '%'"),
            (".", "may not be '.'"),
            ("..", "may not be '..'"),
        ] {
            let err = pods.object_path(Some("ns"), bad).unwrap_err();
            assert_eq!(
                err,
                PathError::InvalidSegment {
                    segment: Segment::Name,
                    value: bad.into(),
                    problem
                }
            );
            assert!(err.to_string().contains("resource name"), "{err}");
            assert!(matches!(
                pods.collection_path(Some(bad)),
                Err(PathError::InvalidSegment {
                    segment: Segment::Namespace,
                    ..
                })
            ));
        }
        assert_eq!(
            pods.collection_path(Some("")),
            Err(PathError::Empty(Segment::Namespace))
        );
        assert!(matches!(
            pods.object_path(None, "x"),
            Err(PathError::NamespaceRequired { .. })
        ));
        assert!(matches!(
            ApiResource::of::<Node>().collection_path(Some("ns")),
            Err(PathError::NamespaceOnClusterScoped { .. })
        ));
        assert!(matches!(
            pods.subresource_path(Some("ns"), "x", "../exec"),
            Err(PathError::InvalidSegment {
                segment: Segment::Subresource,
                ..
            })
        ));
        let unnamed = ApiResource::new("example.com", "v1", "Foo", "", Scope::Cluster);
        assert_eq!(
            unnamed.collection_path(None),
            Err(PathError::Empty(Segment::Resource))
        );
        // A name with a dot inside is a valid segment ("my.pod").
        assert!(pods.object_path(Some("ns"), "my.pod").is_ok());
    }
}
