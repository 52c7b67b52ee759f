//! The resources the model serves: the built-ins `windlass-apiserver` needs
//! and any CustomResourceDefinition created at run time. This module owns
//! the descriptions ([`Resource`]) and their lookup ([`Registry`]); it does
//! not own any object.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::Value;

use super::status::{self, FieldError, StatusError};

/// A group, version and plural resource name: what a request path names
/// (`/apis/apps/v1/deployments` is `Gvr::new("apps", "v1", "deployments")`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Gvr {
    /// API group, empty for the core group.
    pub group: String,
    /// API version, e.g. `v1`.
    pub version: String,
    /// Plural resource name, e.g. `pods`.
    pub resource: String,
}

impl Gvr {
    /// A resource in `group`/`version`.
    pub fn new(group: &str, version: &str, resource: &str) -> Self {
        Self {
            group: group.to_owned(),
            version: version.to_owned(),
            resource: resource.to_owned(),
        }
    }

    /// A resource of the core group, version `v1`.
    pub fn core(resource: &str) -> Self {
        Self::new("", "v1", resource)
    }

    /// The resource of a k8s-openapi type: `Gvr::of::<Pod>()` is `Gvr::core("pods")`.
    pub fn of<K: k8s_openapi::Resource>() -> Self {
        Self::new(K::GROUP, K::VERSION, K::URL_PATH_SEGMENT)
    }

    /// The `apiVersion` string: `v1` or `apps/v1`.
    pub fn api_version(&self) -> String {
        api_version(&self.group, &self.version)
    }
}

fn api_version(group: &str, version: &str) -> String {
    if group.is_empty() {
        version.to_owned()
    } else {
        format!("{group}/{version}")
    }
}

/// Which names a resource accepts (`apimachinery pkg/api/validation` name functions).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NameRule {
    /// A DNS-1123 subdomain (most resources).
    Subdomain,
    /// A DNS-1123 label (namespaces).
    Label,
    /// A DNS-1035 label (services).
    Dns1035Label,
}

/// What the server knows about one resource.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resource {
    /// API group, empty for the core group.
    pub group: String,
    /// The served versions; objects are stored at [`Resource::storage_version`].
    pub versions: Vec<String>,
    /// The version objects are stored at.
    pub storage_version: String,
    /// `kind`, e.g. `Pod`.
    pub kind: String,
    /// The list's `kind`, e.g. `PodList`.
    pub list_kind: String,
    /// Plural name, e.g. `pods`.
    pub plural: String,
    /// Singular name, e.g. `pod`.
    pub singular: String,
    /// Short names, e.g. `po`.
    pub short_names: Vec<String>,
    /// Categories, e.g. `all`.
    pub categories: Vec<String>,
    /// Whether objects live in namespaces.
    pub namespaced: bool,
    /// Whether the resource has a `status` subresource (then updates of the
    /// main resource leave `status` alone, and status updates touch only it).
    pub has_status: bool,
    /// Whether `metadata.generation` is kept (set to 1, bumped on a spec change).
    pub tracks_generation: bool,
    /// Whether DELETE answers with the deleted object rather than a `Success` Status.
    pub returns_deleted_object: bool,
    /// Which names are valid.
    pub name_rule: NameRule,
    /// Field selector labels beyond `metadata.name` and `metadata.namespace`,
    /// each with the dotted path of the value it selects on.
    pub selectable_fields: Vec<(String, String)>,
    /// Whether a CustomResourceDefinition defines this resource.
    pub is_custom: bool,
}

impl Resource {
    /// A resource served at `v1` of `group` with the defaults of most
    /// built-ins (subdomain names, no status subresource, no generation);
    /// adjust the public fields for the rest.
    pub fn builtin(group: &str, kind: &str, plural: &str, namespaced: bool) -> Self {
        Self {
            group: group.to_owned(),
            versions: vec!["v1".to_owned()],
            storage_version: "v1".to_owned(),
            kind: kind.to_owned(),
            list_kind: format!("{kind}List"),
            plural: plural.to_owned(),
            singular: kind.to_ascii_lowercase(),
            short_names: Vec::new(),
            categories: Vec::new(),
            namespaced,
            has_status: false,
            tracks_generation: false,
            returns_deleted_object: false,
            name_rule: NameRule::Subdomain,
            selectable_fields: Vec::new(),
            is_custom: false,
        }
    }

    fn short(mut self, names: &[&str]) -> Self {
        self.short_names = names.iter().map(|s| (*s).to_owned()).collect();
        self
    }

    fn fields(mut self, fields: &[(&str, &str)]) -> Self {
        self.selectable_fields = fields
            .iter()
            .map(|(label, path)| ((*label).to_owned(), (*path).to_owned()))
            .collect();
        self
    }

    fn with_status(mut self) -> Self {
        self.has_status = true;
        self
    }

    /// `pods`, or `deployments.apps` outside the core group (Go's `GroupResource.String`).
    pub fn qualified_resource(&self) -> String {
        qualified(&self.plural, &self.group)
    }

    /// `Pod`, or `Deployment.apps` outside the core group (Go's `GroupKind.String`).
    pub fn qualified_kind(&self) -> String {
        qualified(&self.kind, &self.group)
    }

    /// The `apiVersion` objects carry at `version`.
    pub fn api_version(&self, version: &str) -> String {
        api_version(&self.group, version)
    }

    /// Whether `version` is served.
    pub fn serves(&self, version: &str) -> bool {
        self.versions.iter().any(|v| v == version)
    }

    /// The key of this resource in the registry and the storage.
    pub fn group_resource(&self) -> GroupResource {
        GroupResource {
            group: self.group.clone(),
            resource: self.plural.clone(),
        }
    }

    /// The dotted path a field selector label selects on, if the label is supported.
    pub fn field_path<'a>(&'a self, label: &'a str) -> Option<&'a str> {
        match label {
            "metadata.name" | "metadata.namespace" => Some(label),
            _ => self
                .selectable_fields
                .iter()
                .find(|(l, _)| l == label)
                .map(|(_, p)| p.as_str()),
        }
    }

    /// The resource a CustomResourceDefinition object defines, or the field
    /// errors that make it invalid.
    pub fn from_crd(crd: &Value) -> Result<Self, Vec<FieldError>> {
        let text = |path: &[&str]| -> String {
            let mut v = crd;
            for p in path {
                v = &v[*p];
            }
            v.as_str().unwrap_or_default().to_owned()
        };
        let strings = |v: &Value| -> Vec<String> {
            v.as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|s| s.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default()
        };
        let spec = &crd["spec"];
        let group = text(&["spec", "group"]);
        let plural = text(&["spec", "names", "plural"]);
        let kind = text(&["spec", "names", "kind"]);
        let name = text(&["metadata", "name"]);
        let mut errors = Vec::new();
        if group.is_empty() {
            errors.push(FieldError::required("spec.group", ""));
        }
        if plural.is_empty() {
            errors.push(FieldError::required("spec.names.plural", ""));
        }
        if kind.is_empty() {
            errors.push(FieldError::required("spec.names.kind", ""));
        }
        if !group.is_empty() && !plural.is_empty() && name != format!("{plural}.{group}") {
            errors.push(FieldError::invalid(
                "metadata.name",
                &name,
                "must be spec.names.plural+\".\"+spec.group",
            ));
        }
        let scope = text(&["spec", "scope"]);
        if scope != "Namespaced" && scope != "Cluster" {
            errors.push(FieldError::not_supported(
                "spec.scope",
                &scope,
                &["Cluster", "Namespaced"],
            ));
        }
        let versions = spec["versions"].as_array().cloned().unwrap_or_default();
        let served: Vec<&Value> = versions.iter().filter(|v| v["served"] == true).collect();
        let storage: Vec<&Value> = versions.iter().filter(|v| v["storage"] == true).collect();
        if storage.len() != 1 {
            errors.push(FieldError::invalid(
                "spec.versions",
                &format!("{} storage versions", storage.len()),
                "must have exactly one version marked as storage version",
            ));
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        let storage = storage[0];
        let list_kind = match text(&["spec", "names", "listKind"]) {
            l if l.is_empty() => format!("{kind}List"),
            l => l,
        };
        let singular = match text(&["spec", "names", "singular"]) {
            s if s.is_empty() => kind.to_ascii_lowercase(),
            s => s,
        };
        let selectable_fields = storage["selectableFields"]
            .as_array()
            .map(|fields| {
                fields
                    .iter()
                    .filter_map(|f| f["jsonPath"].as_str())
                    .map(|p| {
                        let p = p.trim_start_matches('.').to_owned();
                        (p.clone(), p)
                    })
                    .collect()
            })
            .unwrap_or_default();
        Ok(Self {
            group,
            versions: served
                .iter()
                .filter_map(|v| v["name"].as_str().map(str::to_owned))
                .collect(),
            storage_version: storage["name"].as_str().unwrap_or_default().to_owned(),
            kind,
            list_kind,
            plural,
            singular,
            short_names: strings(&spec["names"]["shortNames"]),
            categories: strings(&spec["names"]["categories"]),
            namespaced: scope == "Namespaced",
            has_status: storage["subresources"].get("status").is_some(),
            tracks_generation: true,
            returns_deleted_object: false,
            name_rule: NameRule::Subdomain,
            selectable_fields,
            is_custom: true,
        })
    }
}

fn qualified(name: &str, group: &str) -> String {
    if group.is_empty() {
        name.to_owned()
    } else {
        format!("{name}.{group}")
    }
}

/// A group and plural resource name: how storage and the registry file a resource.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GroupResource {
    /// API group, empty for the core group.
    pub group: String,
    /// Plural resource name.
    pub resource: String,
}

/// The served resources, looked up by group and plural name.
#[derive(Clone, Debug, Default)]
pub struct Registry {
    resources: BTreeMap<GroupResource, Arc<Resource>>,
}

impl Registry {
    /// The built-in resources: namespaces, pods, services, configmaps,
    /// secrets, events, deployments, leases and customresourcedefinitions.
    pub fn builtin() -> Self {
        static BUILTIN: std::sync::OnceLock<Registry> = std::sync::OnceLock::new();
        BUILTIN.get_or_init(Self::build_builtin).clone()
    }

    fn build_builtin() -> Self {
        let mut namespaces = Resource::builtin("", "Namespace", "namespaces", false)
            .short(&["ns"])
            .fields(&[("status.phase", "status.phase")])
            .with_status();
        namespaces.name_rule = NameRule::Label;
        namespaces.returns_deleted_object = true;
        let mut pods = Resource::builtin("", "Pod", "pods", true)
            .short(&["po"])
            .fields(&[
                ("spec.nodeName", "spec.nodeName"),
                ("spec.restartPolicy", "spec.restartPolicy"),
                ("spec.schedulerName", "spec.schedulerName"),
                ("spec.serviceAccountName", "spec.serviceAccountName"),
                ("spec.hostNetwork", "spec.hostNetwork"),
                ("status.phase", "status.phase"),
                ("status.podIP", "status.podIP"),
                ("status.nominatedNodeName", "status.nominatedNodeName"),
            ])
            .with_status();
        pods.tracks_generation = true;
        pods.returns_deleted_object = true;
        pods.categories = vec!["all".to_owned()];
        let mut services = Resource::builtin("", "Service", "services", true)
            .short(&["svc"])
            .fields(&[
                ("spec.clusterIP", "spec.clusterIP"),
                ("spec.type", "spec.type"),
            ])
            .with_status();
        services.name_rule = NameRule::Dns1035Label;
        services.returns_deleted_object = true;
        services.categories = vec!["all".to_owned()];
        let configmaps = Resource::builtin("", "ConfigMap", "configmaps", true).short(&["cm"]);
        let secrets = Resource::builtin("", "Secret", "secrets", true).fields(&[("type", "type")]);
        let events = Resource::builtin("", "Event", "events", true)
            .short(&["ev"])
            .fields(&[
                ("involvedObject.kind", "involvedObject.kind"),
                ("involvedObject.namespace", "involvedObject.namespace"),
                ("involvedObject.name", "involvedObject.name"),
                ("involvedObject.uid", "involvedObject.uid"),
                ("involvedObject.apiVersion", "involvedObject.apiVersion"),
                (
                    "involvedObject.resourceVersion",
                    "involvedObject.resourceVersion",
                ),
                ("involvedObject.fieldPath", "involvedObject.fieldPath"),
                ("reason", "reason"),
                ("reportingComponent", "reportingComponent"),
                ("source", "source.component"),
                ("type", "type"),
            ]);
        let mut deployments = Resource::builtin("apps", "Deployment", "deployments", true)
            .short(&["deploy"])
            .with_status();
        deployments.tracks_generation = true;
        deployments.categories = vec!["all".to_owned()];
        let leases = Resource::builtin("coordination.k8s.io", "Lease", "leases", true);
        let mut crds = Resource::builtin(
            "apiextensions.k8s.io",
            "CustomResourceDefinition",
            "customresourcedefinitions",
            false,
        )
        .short(&["crd", "crds"])
        .with_status();
        crds.tracks_generation = true;
        let mut registry = Self::default();
        for r in [
            namespaces,
            pods,
            services,
            configmaps,
            secrets,
            events,
            deployments,
            leases,
            crds,
        ] {
            registry.register(r);
        }
        registry
    }

    /// Serve `resource` (replacing any resource with the same group and plural).
    pub fn register(&mut self, resource: Resource) {
        self.resources
            .insert(resource.group_resource(), Arc::new(resource));
    }

    /// Stop serving a resource; returns it if it was served.
    pub fn unregister(&mut self, group_resource: &GroupResource) -> Option<Arc<Resource>> {
        self.resources.remove(group_resource)
    }

    /// The resource a path names, if it is served at that version.
    pub fn lookup(&self, gvr: &Gvr) -> Result<Arc<Resource>, StatusError> {
        let key = GroupResource {
            group: gvr.group.clone(),
            resource: gvr.resource.clone(),
        };
        match self.resources.get(&key) {
            Some(r) if r.serves(&gvr.version) => Ok(Arc::clone(r)),
            _ => Err(status::no_such_resource()),
        }
    }

    /// The resource filed under `group_resource`.
    pub fn get(&self, group_resource: &GroupResource) -> Option<&Arc<Resource>> {
        self.resources.get(group_resource)
    }

    /// Every served resource, ordered by group and plural name.
    pub fn iter(&self) -> impl Iterator<Item = &Resource> {
        self.resources.values().map(|r| &**r)
    }
}
