//! Bounds on the size of what an event may carry. The state keeps token scopes, ids and URLs
//! (and the history store keeps every URL): without bounds, a thousand tokens with 1 MB scope
//! strings hold gigabytes. The limits sit far above what real servers send (nginx refuses
//! request lines over 8 KiB by default) and an event over them is dead-lettered with its field.

use super::model::{Common, Event};
use super::reject::{Reject, RejectKind};

/// Longest URL kept (a request line beyond this is refused by common servers anyway).
pub const MAX_URL_BYTES: usize = 16 * 1024;
/// Longest scope string (SMART grants are a few hundred bytes; granular ones a few KiB).
pub const MAX_SCOPE_BYTES: usize = 16 * 1024;
/// Longest id, address, user agent, grant type or purpose.
pub const MAX_FIELD_BYTES: usize = 2 * 1024;

/// The event, or why one of its fields is too long.
pub fn within_bounds(event: Event) -> Result<Event, Reject> {
    let too_long = |name: &str, len: usize, max: usize| -> Result<(), Reject> {
        if len > max {
            return Err(Reject::new(
                RejectKind::InvalidValue,
                format!("field {name} is {len} bytes, longer than the {max}-byte limit"),
            ));
        }
        Ok(())
    };
    let short = |name: &str, value: Option<&str>| {
        too_long(name, value.map_or(0, str::len), MAX_FIELD_BYTES)
    };
    let common = |c: &Common| -> Result<(), Reject> {
        short("client_id", Some(&c.client_id))?;
        short("user", c.user.as_deref())?;
        short("source_ip", c.source_ip.as_deref())?;
        short("user_agent", c.user_agent.as_deref())
    };
    match &event {
        Event::Token(t) => {
            common(&t.common)?;
            short("token_id", t.token_id.as_deref())?;
            short("grant_type", t.grant_type.as_deref())?;
            short("patient", t.patient.as_deref())?;
            for (name, scope) in [
                ("scope_requested", &t.scope_requested),
                ("scope_granted", &t.scope_granted),
            ] {
                too_long(name, scope.as_deref().map_or(0, str::len), MAX_SCOPE_BYTES)?;
            }
        }
        Event::Access(a) => {
            common(&a.common)?;
            short("token_id", a.token_id.as_deref())?;
            short("patient", a.patient.as_deref())?;
            short("purpose_of_use", a.purpose_of_use.as_deref())?;
            too_long("url", a.url.len(), MAX_URL_BYTES)?;
        }
    }
    Ok(event)
}

/// Roughly the memory an event holds (its struct and its strings): what the reorder buffer's
/// byte budget counts. An estimate from the contents, so the same events give the same figure.
pub fn approx_bytes(event: &Event) -> usize {
    let len = |t: Option<&str>| t.map_or(0, str::len);
    let common = |c: &Common| {
        c.client_id.len()
            + len(c.user.as_deref())
            + len(c.source_ip.as_deref())
            + len(c.user_agent.as_deref())
    };
    let strings = match event {
        Event::Token(t) => {
            common(&t.common)
                + len(t.token_id.as_deref())
                + len(t.grant_type.as_deref())
                + len(t.patient.as_deref())
                + len(t.scope_requested.as_deref())
                + len(t.scope_granted.as_deref())
        }
        Event::Access(a) => {
            common(&a.common)
                + a.url.len()
                + len(a.token_id.as_deref())
                + len(a.patient.as_deref())
                + len(a.purpose_of_use.as_deref())
        }
    };
    std::mem::size_of::<Event>() + strings
}
