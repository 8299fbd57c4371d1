//! The policy table: every RPC the daemon serves and what a caller needs to
//! reach it.
//!
//! Invariant: this table is the only list of reachable RPCs. A path missing
//! from it is refused, and only entries marked [`Access::Anonymous`] can be
//! reached without a session.

/// What a caller needs to reach an RPC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Reachable by any peer that can open the socket.
    Anonymous,
    /// Needs an authenticated session.
    Session,
}

/// One row of the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RpcPolicy {
    /// Full gRPC path, `/package.Service/Method`.
    pub path: &'static str,
    /// What a caller needs.
    pub access: Access,
}

const fn rpc(path: &'static str, access: Access) -> RpcPolicy {
    RpcPolicy { path, access }
}

/// Every RPC occcd serves.
pub const POLICY_TABLE: &[RpcPolicy] = &[
    // Standard services, so grpcurl, grpc_health_probe and friends work.
    rpc("/grpc.health.v1.Health/Check", Access::Anonymous),
    rpc("/grpc.health.v1.Health/Watch", Access::Anonymous),
    rpc(
        "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
        Access::Anonymous,
    ),
    // What a login screen needs before anyone has logged in.
    rpc("/occc.v1.System/GetInfo", Access::Anonymous),
    rpc("/occc.v1.Audit/VerifyChain", Access::Session),
];

/// The table row for `path`, if the daemon serves it.
#[must_use]
pub fn policy_for(path: &str) -> Option<&'static RpcPolicy> {
    POLICY_TABLE.iter().find(|entry| entry.path == path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn anonymous_allowlist_is_exactly_health_reflection_and_info() {
        let anonymous: Vec<_> = POLICY_TABLE
            .iter()
            .filter(|entry| entry.access == Access::Anonymous)
            .map(|entry| entry.path)
            .collect();
        assert_eq!(
            anonymous,
            [
                "/grpc.health.v1.Health/Check",
                "/grpc.health.v1.Health/Watch",
                "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
                "/occc.v1.System/GetInfo",
            ]
        );
    }

    #[test]
    fn unknown_and_near_miss_paths_have_no_policy() {
        assert!(policy_for("/occc.v1.Audit/VerifyChain").is_some());
        assert!(policy_for("/occc.v1.Audit/VerifyChain/").is_none());
        assert!(
            policy_for("/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo").is_none()
        );
        assert!(policy_for("").is_none());
    }
}
