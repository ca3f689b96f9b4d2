//! Detection rules with stable ids. Each is a function of one trigger's context (an event, a
//! grant, an access, a finished hour or day: `hooks`) that adds findings; the catalog declares
//! every rule with its hook, and incidents turn findings into alerts. Adding a rule: its file
//! here and its catalog entry.

pub mod catalog;
pub mod drift;
pub mod enforcement;
pub mod fold;
pub mod hooks;
pub mod novelty;
pub mod registry;
pub mod settings;
pub mod slow_drip;
pub mod volume;
