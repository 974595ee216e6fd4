//! SFrame keys from MLS (RFC 9605 §5.2): KIDs, the per-epoch keyring, the MLS session that
//! feeds it, safety numbers and member fingerprints.

mod error;
mod fingerprint;
mod keyring;
mod kid;
mod safety_number;
mod session;

pub use error::{KeyringError, Misuse, MlsError, PeerFault};
pub use fingerprint::{FINGERPRINT_GROUPS, Fingerprint};
pub use keyring::{
    DEFAULT_GRACE, EpochKey, KEY_WAIT, Keyring, KeyringConfig, MAX_LEAVES, OpenPlan, ReceivedFrame,
    SealPlan,
};
pub use kid::{DEFAULT_EPOCH_BITS, KidLayout};
pub use safety_number::{SAFETY_NUMBER_GROUPS, SafetyNumber};
pub use session::{
    Application, CommitOutput, DeviceKey, EpochChange, MlsCiphersuite, MlsSession, Processed,
    RosterEntry, SFRAME_EXPORTER_LABEL, SessionConfig,
};
