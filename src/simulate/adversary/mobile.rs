//! `mobile-health`: one patient on two devices, each with its own grant and refresh chain.

use super::*;

/// One of a `mobile-health` patient's two devices, each with its own grant and refresh chain.
pub(super) struct Device {
    pub(super) patient: String,
    pub(super) user: String,
    pub(super) scopes: &'static str,
    /// Device A's grant also covers Conditions.
    pub(super) conditions: bool,
    pub(super) granted: Timestamp,
    /// The access token in hand and when it lapses (None once the user signed out).
    pub(super) token: Option<(Text, Timestamp)>,
}

impl Device {
    pub(super) fn holder(&self) -> Holder<'_> {
        Holder {
            patient: Some(self.patient.as_str()),
            user: Some(self.user.as_str()),
        }
    }
}

/// Every pool patient signs in on device A and device B on days 0–2 (and uses it at once).
pub(super) fn enrol(g: &mut Gen, app: &Archetype, days: i64) -> Vec<Device> {
    let mut devices = Vec::new();
    if days <= 0 {
        return devices;
    }
    let last = (days - 1).clamp(0, 2) as u64;
    for i in 0..MOBILE_PATIENTS {
        let patient = format!("pat-{:05}", 17_000 + i * 37);
        for (scopes, conditions) in [(app.scopes, true), (DEVICE_B_SCOPES, false)] {
            let day = g.rng.range(0, last) as i64;
            let hour = g.rng.range(7, 21) as i64;
            let t = after(g.at(day, hour), g.rng.range(0, 3_300) as i64);
            let mut device = Device {
                user: format!("Patient/{patient}"),
                patient: patient.clone(),
                scopes,
                conditions,
                granted: t,
                token: None,
            };
            let token = sign_in(g, app, &mut device, t);
            mobile_reads(g, app, &device, &token, t);
            devices.push(device);
        }
    }
    devices
}

pub(super) fn sign_in(g: &mut Gen, app: &Archetype, device: &mut Device, t: Timestamp) -> Text {
    let token = grant(g, t, app, device.scopes, device.holder());
    device.token = Some((token.clone(), after(t, app.token_lifetime)));
    token
}

/// Reads within the device's own grant; returns the last one's time.
pub(super) fn mobile_reads(
    g: &mut Gen,
    app: &Archetype,
    device: &Device,
    token: &Text,
    t0: Timestamp,
) -> Timestamp {
    let (lo, hi) = app.requests_per_session;
    let conditions = device.conditions;
    let mut t = t0;
    for _ in 0..g.rng.range(lo, hi) {
        t = step(g, t);
        let kind = pick_where(g, app.kinds, |k| {
            conditions || !k.url.starts_with("Condition")
        });
        if let Some(kind) = kind {
            request(g, t, app, token, kind, Some(device.patient.as_str()));
        }
    }
    t
}

/// A session on a random device: reuse its live token, refresh a lapsing one (with that
/// device's scopes), or sign in again after a sign-out.
pub(super) fn mobile_session(g: &mut Gen, app: &Archetype, t0: Timestamp, devices: &mut [Device]) {
    if devices.is_empty() {
        return;
    }
    let i = g.rng.range(0, devices.len() as u64 - 1) as usize;
    let Some(device) = devices.get_mut(i) else {
        return;
    };
    if t0 < device.granted {
        return;
    }
    let token = match device.token.clone() {
        Some((token, lapses)) if lapses.0 - t0.0 > 120 * MICROS_PER_SECOND => token,
        Some(_) => {
            let token = refresh(g, t0, app, device.scopes, device.holder());
            device.token = Some((token.clone(), after(t0, app.token_lifetime)));
            token
        }
        None => sign_in(g, app, device, t0),
    };
    let t = mobile_reads(g, app, device, &token, t0);
    if g.rng.unit() < SIGN_OUT {
        revoke(g, after(t, 5), app, &token, device.holder());
        device.token = None;
    }
}
