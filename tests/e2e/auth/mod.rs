//! Issue #3: the authentication engine over the real socket.

mod accounts;
mod argon2_interop;
mod bad_input;
mod brute_force;
mod device_keys;
mod first_run;
mod injected_clock;
mod occcctl;
mod pam;
mod pam_limits;
mod peer_binding;
mod rbac_matrix;
mod secrets;
