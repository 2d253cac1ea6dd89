//! A Kubernetes API emulator for the kinds Astrolabe watches, faithful enough for the unmodified
//! kube-rs `watcher` (ListWatch and streaming lists) and the real `kubectl` over plain HTTP.
//!
//! Layout (one concept per module):
//! - [`kinds`]: the table of built-in kinds (group, version, plural, scope, short names): the
//!   model's table of watched kinds ([`astrolabe_model::for_each_kind!`]) plus `Endpoints`,
//!   the two `Event` kinds and `CustomResourceDefinition`.
//! - `crd`: what a CustomResourceDefinition serves, its defaults and its `Established` status.
//! - [`crds`]: the CRDs compiled in (cert-manager, Gateway API, Prometheus Operator, Istio) that
//!   generated custom resources are served from.
//! - `registry`: the kinds served from CRDs (interned descriptions, storage), under the store's
//!   lock beside the built-in kinds.
//! - [`store`]: objects per kind, the single cluster-wide resourceVersion, bounded per-kind history.
//! - [`list`]: list requests, `limit`/`continue` pagination over snapshots, resourceVersion rules.
//! - [`watch`]: watch streams (replay, streaming lists, live events, bookmarks, ERROR 410).
//! - [`selector`]: label selectors (the model's) matched against JSON labels; field selectors.
//! - [`patch`]: JSON, merge and strategic merge patches, and server-side apply with managed fields.
//! - [`defaults`]: the defaulting of every write (workload, pod and Service fields).
//! - [`validate`]: strict field validation (`fieldValidation=Strict`) against the k8s-openapi types.
//! - [`protobuf`]: the Kubernetes protobuf encoding of the kinds kubectl's generators create.
//! - [`table`]: `meta.k8s.io/v1` Table responses for kubectl's printers.
//! - [`partial`]: `meta.k8s.io/v1` PartialObjectMetadata responses for metadata-only clients.
//! - [`discovery`]: `/version`, `/api`, `/apis` and APIResourceLists, legacy and aggregated.
//! - [`openapi`]: OpenAPI v2 and v3 documents: kubectl reads v3 to use server-side field
//!   validation, and v2 to validate `List` manifests on the client.
//! - `faults`: injected failures and delays (driven through [`Sim`]).
//! - [`server`]: the axum router and [`serve`]; its `write` module parses request bodies and
//!   write options and serves server-side apply and the Scale subresource.
//! - [`reviews`]: TokenReview and SubjectAccessReview, answered from [`SimAuth`].
//! - [`render`]: generated `astrolabe_model::Resource`s as Kubernetes JSON (spec, and status as
//!   the controllers report it, custom resources with the generator's `spec`);
//!   [`Sim::with_generated`], [`Sim::generated_with_options`].
//! - [`churn`]: a seeded task making realistic changes (rolling updates, scaling, config edits).
//! - [`controllers`]: the controllers that make it behave like a small cluster (Deployments to
//!   ReplicaSets to Pods, scheduling and Pod phases, EndpointSlices, StatefulSets, Jobs, volume
//!   binding, garbage collection, namespace lifecycle, Events); off unless
//!   [`SimConfig::controllers`] is set or [`Sim::start_controllers`] is called.
//! - [`sim`]: [`Sim`], the cheap-clone handle with the library CRUD API and fault knobs.
//!
//! Data flow: HTTP handlers and the library API both lock the one `State`, mutate it, append the
//! event to the kind's history and broadcast it (storing or deleting a CRD also adds or removes
//! kinds in the same critical section); each open watch is a task that filters the
//! broadcast for its scope and writes newline-delimited JSON to a streaming response body.
//! Objects are plain Kubernetes JSON (`serde_json::Value`); `k8s-openapi` types serve only to
//! check request bodies strictly ([`validate`]).
//! It depends on `astrolabe-model` (ADR 0002) for label selectors ([`selector`]) and to render
//! generated clusters ([`render`]).

pub mod churn;
pub mod controllers;
mod crd;
pub mod crds;
pub mod defaults;
pub mod discovery;
pub mod error;
mod faults;
pub mod kinds;
pub mod list;
pub mod openapi;
pub mod partial;
pub mod patch;
pub mod protobuf;
mod registry;
pub mod render;
pub mod reviews;
pub mod selector;
pub mod server;
pub mod sim;
pub mod store;
pub mod table;
pub mod validate;
pub mod watch;

pub use astrolabe_generator::Options as GenerateOptions;
pub use churn::{ChurnAction, ChurnConfig, Churner, run_churn};
pub use error::{Result, SimError};
pub use kinds::{KINDS, KindInfo};
pub use reviews::{SimAuth, SimGrant, SimUser};
pub use server::{router, serve};
pub use sim::{Sim, SimConfig};
