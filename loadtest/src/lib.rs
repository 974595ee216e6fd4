//! Load tests whose bots are real E2EE participants (see the README's loadtest section).

pub mod bot;
pub mod error;
pub mod media;
pub mod report;
pub mod run;
pub mod scenario;
pub mod sfu_process;
pub mod stats;

pub use error::LoadError;
