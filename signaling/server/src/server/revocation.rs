//! Removals that hold: which token each participant joined with, the tokens an administrator
//! revoked by removing their holder (by `jti`, for the rest of the token's life), and the
//! identities banned from a room until a time. Kept in this server's memory: a restart forgets
//! them (tokens live at most a day; a cluster keeps them in its store).
//!
//! One lock over all three, so that a join admitted here and a removal sweeping the holders
//! cannot miss each other: a join's holder is recorded before it enters the room, and the
//! join is checked again once it is in.

use std::collections::HashMap;
use std::sync::Mutex;

use signaling_protocol::{ErrorCode, ParticipantId};
use signaling_token::Claims;

/// What a removal revokes: the token's id, or (a token made without one) its identity in its
/// room until it expires.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(tag = "by", rename_all = "snake_case")]
enum Revoked {
    Token { room: String, jti: String },
    Identity { room: String, identity: String },
}

/// Why a participant may not come back, and until when (seconds since the Unix epoch).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct Until {
    until: u64,
    code: ErrorCode,
}

/// The token a participant holds.
#[derive(Debug, Clone)]
struct Holder {
    room: String,
    identity: String,
    jti: Option<String>,
    exp: u64,
}

impl Holder {
    fn revoked(&self) -> Revoked {
        match &self.jti {
            Some(jti) => Revoked::Token {
                room: self.room.clone(),
                jti: jti.clone(),
            },
            None => Revoked::Identity {
                room: self.room.clone(),
                identity: self.identity.clone(),
            },
        }
    }
}

#[derive(Debug, Default)]
struct Lists {
    holders: HashMap<ParticipantId, Holder>,
    revoked: HashMap<Revoked, Until>,
}

impl Lists {
    fn check(&self, holder: &Holder, now: u64) -> Result<(), (ErrorCode, String)> {
        let by_identity = Revoked::Identity {
            room: holder.room.clone(),
            identity: holder.identity.clone(),
        };
        let hits = [
            Some(by_identity),
            holder.jti.as_ref().map(|_| holder.revoked()),
        ];
        for key in hits.into_iter().flatten() {
            match self.revoked.get(&key) {
                Some(u) if u.until > now && u.code == ErrorCode::Banned => {
                    return Err((
                        ErrorCode::Banned,
                        format!(
                            "{:?} may not enter room {:?} until {} (Unix time): an administrator banned this identity",
                            holder.identity, holder.room, u.until
                        ),
                    ));
                }
                Some(u) if u.until > now => {
                    return Err((
                        ErrorCode::Removed,
                        "an administrator removed you from this meeting; this invitation no longer admits you".into(),
                    ));
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Who holds a token `key` revokes: a token's id revokes that token; an identity (a token
    /// made without an id) every token for it in the room.
    fn holding(&self, key: &Revoked) -> Vec<ParticipantId> {
        let mut holding: Vec<ParticipantId> = self
            .holders
            .iter()
            .filter(|(_, h)| match key {
                Revoked::Token { .. } => h.revoked() == *key,
                Revoked::Identity { room, identity } => h.room == *room && h.identity == *identity,
            })
            .map(|(&p, _)| p)
            .collect();
        holding.sort_unstable();
        holding
    }

    fn add(&mut self, key: Revoked, until: Until, now: u64) {
        self.revoked.retain(|_, u| u.until > now);
        let entry = self.revoked.entry(key).or_insert(until);
        // A ban outranks a removal; the later end holds.
        if until.code == ErrorCode::Banned {
            entry.code = ErrorCode::Banned;
        }
        entry.until = entry.until.max(until.until);
    }
}

/// A revocation or a ban as it is shared with the other nodes of a cluster, which apply it
/// too ([`Revocations::apply`]).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct Revocation {
    what: Revoked,
    until: Until,
}

impl Revocation {
    /// The keys of the revocations that would refuse `claims`: of its token, and of its
    /// identity in its room.
    pub(crate) fn keys_for(claims: &Claims) -> Vec<String> {
        let h = holder(claims);
        let by_identity = Revoked::Identity {
            room: h.room.clone(),
            identity: h.identity.clone(),
        };
        [Some(by_identity), h.jti.as_ref().map(|_| h.revoked())]
            .into_iter()
            .flatten()
            .map(|what| {
                Revocation {
                    what,
                    until: Until {
                        until: 0,
                        code: ErrorCode::Removed,
                    },
                }
                .key()
            })
            .collect()
    }

    /// A key naming it (for a cluster's store): the same revocation, the same key.
    pub(crate) fn key(&self) -> String {
        use sha2::Digest;
        let text = serde_json::to_string(&self.what).unwrap_or_default();
        hex::encode(&sha2::Sha256::digest(text.as_bytes())[..16])
    }

    /// The room it concerns.
    pub(crate) fn room(&self) -> &str {
        match &self.what {
            Revoked::Token { room, .. } | Revoked::Identity { room, .. } => room,
        }
    }

    /// Why its holders go: `removed` or `banned`.
    pub(crate) fn code(&self) -> ErrorCode {
        self.until.code
    }

    /// Until when (seconds since the Unix epoch).
    pub(crate) fn until(&self) -> u64 {
        self.until.until
    }
}

/// See the module documentation.
#[derive(Debug, Default)]
pub(super) struct Revocations {
    lists: Mutex<Lists>,
}

impl Revocations {
    fn lock(&self) -> std::sync::MutexGuard<'_, Lists> {
        // Every change here is a single insert or removal: a panic cannot leave it half-done.
        self.lists.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether `claims` (verified for `room`) may join now.
    pub(super) fn check(&self, claims: &Claims, now: u64) -> Result<(), (ErrorCode, String)> {
        self.lock().check(&holder(claims), now)
    }

    /// Records that `pid` joins with `claims` (before it enters the room, so that a removal
    /// always finds its token), unless that token is revoked.
    pub(super) fn hold(
        &self,
        pid: ParticipantId,
        claims: &Claims,
        now: u64,
    ) -> Result<(), (ErrorCode, String)> {
        let holder = holder(claims);
        let mut lists = self.lock();
        lists.check(&holder, now)?;
        lists.holders.insert(pid, holder);
        Ok(())
    }

    /// `pid`'s connection ended.
    pub(super) fn release(&self, pid: ParticipantId) {
        self.lock().holders.remove(&pid);
    }

    /// Revokes the token `pid` holds in `room` for the rest of its life; every participant
    /// holding it there (`pid`, and a second connection of the same token), who must go.
    /// `None` if `pid` holds no token there.
    pub(super) fn revoke(
        &self,
        room: &str,
        pid: ParticipantId,
        now: u64,
    ) -> Option<(Revocation, Vec<ParticipantId>)> {
        let mut lists = self.lock();
        let holder = lists
            .holders
            .get(&pid)
            .filter(|h| h.room == room)
            .cloned()?;
        let key = holder.revoked();
        let until = Until {
            until: holder.exp,
            code: ErrorCode::Removed,
        };
        lists.add(key.clone(), until, now);
        let holding = lists.holding(&key);
        Some((Revocation { what: key, until }, holding))
    }

    /// A revocation or ban made at another node of the cluster, here too; the participants
    /// holding it here now, who must go.
    pub(super) fn apply(&self, revocation: &Revocation, now: u64) -> Vec<ParticipantId> {
        let mut lists = self.lock();
        lists.add(revocation.what.clone(), revocation.until, now);
        lists.holding(&revocation.what)
    }

    /// Bans `identity` from `room` until `until`; the participants holding a token for it
    /// there now, who must go.
    pub(super) fn ban(
        &self,
        room: &str,
        identity: &str,
        until: u64,
        now: u64,
    ) -> (Revocation, Vec<ParticipantId>) {
        let mut lists = self.lock();
        let key = Revoked::Identity {
            room: room.to_owned(),
            identity: identity.to_owned(),
        };
        let ban = Until {
            until,
            code: ErrorCode::Banned,
        };
        lists.add(key.clone(), ban, now);
        let holding = lists.holding(&key);
        (
            Revocation {
                what: key,
                until: ban,
            },
            holding,
        )
    }
}

fn holder(claims: &Claims) -> Holder {
    Holder {
        room: claims.room.clone(),
        identity: claims.sub.clone(),
        jti: claims.jti.clone(),
        exp: claims.exp,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const HOUR: Duration = Duration::from_secs(3600);

    #[test]
    fn a_revocation_shared_by_another_node_refuses_here_and_names_its_holders_here() {
        let there = Revocations::default();
        let here = Revocations::default();
        let alice = Claims::new("r", "alice", HOUR);
        let now = signaling_token::unix_now();
        there.hold(1, &alice, now).expect("admitted there");
        here.hold(7, &alice, now).expect("the same token, here");
        let (revocation, _) = there.revoke("r", 1, now).expect("revoked");
        assert!(Revocation::keys_for(&alice).contains(&revocation.key()));
        assert_eq!(
            here.apply(&revocation, now),
            vec![7],
            "its holder here goes"
        );
        assert_eq!(
            here.check(&alice, now).map_err(|(code, _)| code),
            Err(ErrorCode::Removed)
        );
        let (ban, _) = there.ban("r", "mallory", now + 60, now);
        let mallory = Claims::new("r", "mallory", HOUR);
        assert!(Revocation::keys_for(&mallory).contains(&ban.key()));
        here.apply(&ban, now);
        assert_eq!(
            here.check(&mallory, now).map_err(|(code, _)| code),
            Err(ErrorCode::Banned)
        );
    }

    #[test]
    fn a_removal_revokes_that_token_only_until_it_expires() {
        let r = Revocations::default();
        let alice = Claims::new("r", "alice", HOUR);
        let again = Claims::new("r", "alice", HOUR);
        let now = signaling_token::unix_now();
        r.hold(1, &alice, now).expect("admitted");
        r.hold(2, &again, now).expect("admitted");
        assert_eq!(r.revoke("r", 1, now).map(|(_, h)| h), Some(vec![1]));
        assert!(r.revoke("other room", 1, now).is_none(), "not there");
        assert_eq!(
            r.check(&alice, now).map_err(|e| e.0),
            Err(ErrorCode::Removed)
        );
        // A new invitation for the same identity is the organiser's choice.
        assert_eq!(r.check(&again, now), Ok(()));
        // After its expiry, nothing is kept (and it would be refused as expired anyway).
        assert_eq!(r.check(&alice, alice.exp), Ok(()));
    }

    #[test]
    fn a_token_without_an_id_is_revoked_by_its_identity_in_its_room() {
        let r = Revocations::default();
        let bare = Claims {
            jti: None,
            ..Claims::new("r", "alice", HOUR)
        };
        let now = signaling_token::unix_now();
        r.hold(1, &bare, now).expect("admitted");
        // Another connection of alice's, with a token that has an id: it goes too.
        r.hold(2, &Claims::new("r", "alice", HOUR), now)
            .expect("admitted");
        assert_eq!(r.revoke("r", 1, now).map(|(_, h)| h), Some(vec![1, 2]));
        assert!(r.check(&Claims::new("r", "alice", HOUR), now).is_err());
        assert_eq!(r.check(&Claims::new("other", "alice", HOUR), now), Ok(()));
        assert_eq!(r.check(&Claims::new("r", "bob", HOUR), now), Ok(()));
    }

    #[test]
    fn a_ban_refuses_every_token_for_the_identity_until_its_end_and_names_who_must_go() {
        let r = Revocations::default();
        let now = signaling_token::unix_now();
        r.hold(1, &Claims::new("r", "mallory", HOUR), now)
            .expect("in");
        r.hold(2, &Claims::new("r", "bob", HOUR), now).expect("in");
        r.hold(3, &Claims::new("other", "mallory", HOUR), now)
            .expect("in");
        assert_eq!(r.ban("r", "mallory", now + 60, now).1, vec![1]);
        let fresh = Claims::new("r", "mallory", HOUR);
        assert_eq!(
            r.check(&fresh, now).map_err(|e| e.0),
            Err(ErrorCode::Banned)
        );
        assert_eq!(r.check(&fresh, now + 60), Ok(()));
        assert_eq!(r.check(&Claims::new("other", "mallory", HOUR), now), Ok(()));
    }

    #[test]
    fn a_join_checked_before_a_removal_is_caught_when_its_holder_is_recorded() {
        let r = Revocations::default();
        let now = signaling_token::unix_now();
        let alice = Claims::new("r", "alice", HOUR);
        r.hold(1, &alice, now).expect("in");
        // The same token joins again (a reconnect) and passes the check...
        assert_eq!(r.check(&alice, now), Ok(()));
        // ...then the administrator removes the first connection...
        assert_eq!(r.revoke("r", 1, now).map(|(_, h)| h), Some(vec![1]));
        // ...and the second is refused when it is recorded.
        assert_eq!(
            r.hold(2, &alice, now).map_err(|e| e.0),
            Err(ErrorCode::Removed)
        );
    }

    #[test]
    fn a_removal_takes_every_connection_of_that_token() {
        let r = Revocations::default();
        let now = signaling_token::unix_now();
        let alice = Claims::new("r", "alice", HOUR);
        r.hold(1, &alice, now).expect("in");
        r.hold(2, &alice, now)
            .expect("a second tab with the same link");
        r.hold(3, &Claims::new("r", "alice", HOUR), now)
            .expect("another invitation");
        assert_eq!(r.revoke("r", 2, now).map(|(_, h)| h), Some(vec![1, 2]));
        r.release(1);
        r.release(2);
        assert!(r.revoke("r", 2, now).is_none());
    }
}
