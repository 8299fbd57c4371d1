//! Issue #2: the foundation — socket, gate, store, audit chain, lifecycle.

mod audit_chain;
mod audit_export;
mod audit_reading;
mod backup;
mod backup_client;
mod backup_rpc;
mod connection_limits;
mod crash_trials;
mod encrypted_store;
mod events;
mod health;
mod interop;
mod keepalive;
mod key_file_faults;
mod lifecycle;
mod load;
mod long_reads;
pub(crate) mod metrics;
mod refusal_budget;
mod rekey;
mod service_manager;
mod serving;
mod share_totals;
mod stalled_reader;
mod store_faults;
