//! Detection rules with stable ids. Each is a pure function of an event (and what the core
//! already knows) that returns findings; incidents turn findings into alerts.

pub mod catalog;
pub mod drift;
pub mod enforcement;
pub mod novelty;
pub mod registry;
pub mod settings;
pub mod volume;
