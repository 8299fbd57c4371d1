//! Issue #3: the authentication engine over the real socket.

mod accounts;
mod argon2_interop;
mod bad_input;
mod brute_force;
mod credential_changes;
mod device_keys;
mod first_run;
mod gate_fuzz;
mod in_flight;
mod injected_clock;
mod login_methods;
mod memory;
pub(crate) mod occcctl;
mod occcctl_admin;
pub(crate) mod pam;
mod pam_limits;
mod pam_peers;
mod peer_binding;
mod rbac_matrix;
mod restarts;
mod secrets;
mod streams;
