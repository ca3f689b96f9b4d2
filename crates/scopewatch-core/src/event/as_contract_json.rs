//! Serde adapter that stores an event as its contract JSON object and reads it back through the
//! contract parser, so a snapshot holds events in the documented format and never in a second,
//! hand-kept encoding.

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::{parse_event_str, Event};

pub fn serialize<S: Serializer>(event: &Event, s: S) -> Result<S::Ok, S::Error> {
    event.serialize(s)
}

pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Event, D::Error> {
    let value = serde_json::Value::deserialize(d)?;
    parse_event_str(&value.to_string()).map_err(|reject| D::Error::custom(reject.reason))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize, Deserialize, PartialEq, Debug)]
    struct Holder {
        #[serde(with = "super")]
        event: Event,
    }

    #[test]
    fn events_round_trip_through_the_contract() {
        let lines = [
            r#"{"type":"access","time":"2024-03-05T14:00:00.123456Z","client_id":"app","user":"u","source_ip":"10.0.0.1","user_agent":"ua","token_id":"t","method":"GET","url":"Observation?patient=p1","status":200,"resources_returned":3,"bytes":1234,"patient":"p1","patient_count":1,"purpose_of_use":"TREAT"}"#,
            r#"{"type":"token","event":"refreshed","time":"2024-03-05T14:00:00Z","client_id":"app","token_id":"t","grant_type":"refresh_token","scope_requested":"patient/*.read","scope_granted":"patient/Observation.rs","patient":"p1","expires_in":300}"#,
        ];
        for line in lines {
            let holder = Holder {
                event: parse_event_str(line).unwrap(),
            };
            let json = serde_json::to_string(&holder).unwrap();
            let back: Holder = serde_json::from_str(&json).unwrap();
            assert_eq!(back, holder);
        }
        let bad = r#"{"event":{"type":"access","time":"2024-03-05T14:00:00Z"}}"#;
        let err = serde_json::from_str::<Holder>(bad).unwrap_err().to_string();
        assert!(err.contains("client_id"), "{err}");
    }
}
