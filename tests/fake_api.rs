//! Tests of the fake kube-apiserver in `tests/support/fake_api`, one per capability, each
//! derived from the Kubernetes API conventions. Cases live in `tests/fake_api/*.rs`.

mod support;

mod fake_api {
    pub mod apply;
    pub mod common;
    pub mod controller;
    pub mod crud;
    pub mod discovery;
    pub mod lifecycle;
    pub mod ops;
    pub mod watch;
}
