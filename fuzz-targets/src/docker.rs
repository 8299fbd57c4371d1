//! What the container engine answers, as the integrity monitor reads it.

use bollard::models::{ContainerInspectResponse, EventMessage};
use occcd::{
    clock::UnixMillis,
    integrity::{events, identity, runtime_checks},
};

/// An engine event (first byte even) or a container inspection (odd),
/// decoded as bollard does and passed to the monitor's judgements.
pub fn docker_responses(data: &[u8]) {
    let Some((&pick, json)) = data.split_first() else {
        return;
    };
    if pick % 2 == 0 {
        let Ok(event) = serde_json::from_slice::<EventMessage>(json) else {
            return;
        };
        let _ = events::classify(&event, "openclaw", pick & 2 == 0, UnixMillis(1));
        let _ = events::container_name(&event);
        let _ = events::exec_id(&event);
        let _ = events::network_connect(&event);
        let _ = events::may_undo_isolation(&event);
        let _ = events::event_nanos(&event);
    } else {
        let Ok(inspect) = serde_json::from_slice::<ContainerInspectResponse>(json) else {
            return;
        };
        let _ = identity::image_layers(&inspect);
        let _ = runtime_checks::configured_user(&inspect);
        let _ = runtime_checks::is_privileged(&inspect);
    }
}
