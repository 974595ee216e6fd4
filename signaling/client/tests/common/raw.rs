//! A participant that speaks the protocol by hand over a raw WebSocket, with its own MLS
//! session: to send exactly what a test needs (races, garbage, silence).

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use media_crypto::mls::{MlsSession, SessionConfig};
use signaling_protocol::{
    ClientMessage, CommitMessage, PROTOCOL_VERSION, ParticipantId, ServerMessage,
    credential_identity, decode_server,
};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub struct Raw {
    pub ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    pub pid: ParticipantId,
    pub session: MlsSession,
}

const T: Duration = Duration::ZERO;

impl Raw {
    pub async fn join(url: &str, room: &str, identity: &str) -> Raw {
        let (mut ws, _) = tokio_tungstenite::connect_async(url)
            .await
            .expect("connect");
        let join = ClientMessage::Join {
            protocol: PROTOCOL_VERSION,
            room: room.into(),
            token: super::token_for(room, identity, 600),
        };
        ws.send(Message::text(serde_json::to_string(&join).expect("json")))
            .await
            .expect("send");
        let mut raw = Raw {
            ws,
            pid: 0,
            session: MlsSession::new("unset", SessionConfig::default()).expect("session"),
        };
        let ServerMessage::Joined { participant_id, .. } = raw.recv().await else {
            panic!("not joined");
        };
        raw.pid = participant_id;
        raw.session = MlsSession::new(
            credential_identity(participant_id, identity),
            SessionConfig::default(),
        )
        .expect("session");
        raw
    }

    pub async fn send(&mut self, m: &ClientMessage) {
        self.send_text(&serde_json::to_string(m).expect("json"))
            .await;
    }

    pub async fn send_text(&mut self, text: &str) {
        self.ws
            .send(Message::text(text.to_owned()))
            .await
            .expect("send");
    }

    pub async fn recv(&mut self) -> ServerMessage {
        loop {
            let frame = tokio::time::timeout(super::WAIT, self.ws.next())
                .await
                .expect("timed out waiting for the server")
                .expect("closed")
                .expect("frame");
            if let Message::Text(t) = frame {
                return decode_server(&t).expect("decodable");
            }
        }
    }

    /// Receives until a message matches.
    pub async fn recv_until(&mut self, pred: impl Fn(&ServerMessage) -> bool) -> ServerMessage {
        loop {
            let m = self.recv().await;
            if pred(&m) {
                return m;
            }
        }
    }

    /// Creates the group when asked.
    pub async fn create_group(&mut self) {
        let ServerMessage::CreateGroup { group_id } = self
            .recv_until(|m| matches!(m, ServerMessage::CreateGroup { .. }))
            .await
        else {
            unreachable!()
        };
        self.session
            .create_group(group_id.as_slice(), T)
            .expect("create");
        let gi = self.session.group_info().expect("gi");
        self.send(&ClientMessage::GroupCreated {
            group_info: gi.into(),
        })
        .await;
    }

    /// Waits for a commit request and makes the commit it asks for (not sent).
    pub async fn commit_for_request(&mut self) -> CommitMessage {
        let ServerMessage::CommitRequest { epoch, add, remove } = self
            .recv_until(|m| matches!(m, ServerMessage::CommitRequest { .. }))
            .await
        else {
            unreachable!()
        };
        let added = add.iter().map(|a| a.participant_id).collect();
        let kps: Vec<Vec<u8>> = add.into_iter().map(|a| a.key_package.into_vec()).collect();
        let out = self.session.commit(&kps, &[]).expect("commit");
        assert!(remove.is_empty(), "raw members only add");
        CommitMessage {
            epoch,
            commit: out.commit.into(),
            welcome: out.welcome.map(Into::into),
            group_info: out.group_info.expect("gi").into(),
            added,
            removed: vec![],
        }
    }

    /// A key update commit for the current epoch.
    pub fn self_update(&mut self) -> CommitMessage {
        let epoch = self.session.epoch().expect("member");
        let out = self.session.commit(&[], &[]).expect("commit");
        CommitMessage {
            epoch,
            commit: out.commit.into(),
            welcome: None,
            group_info: out.group_info.expect("gi").into(),
            added: vec![],
            removed: vec![],
        }
    }

    /// Processes the next commit the server fans out.
    pub async fn process_next_commit(&mut self) -> ParticipantId {
        let ServerMessage::Commit { commit, from, .. } = self
            .recv_until(|m| matches!(m, ServerMessage::Commit { .. }))
            .await
        else {
            unreachable!()
        };
        self.session.process(commit.as_slice(), T).expect("process");
        from
    }

    /// Sends a key package (the first half of [`Self::get_added`]).
    pub async fn get_added_later(&mut self) {
        let kp = self.session.key_package().expect("kp");
        self.send(&ClientMessage::KeyPackage {
            key_package: kp.into(),
        })
        .await;
    }

    /// Joins from the Welcome that comes and acknowledges it (the second half of
    /// [`Self::get_added`]).
    pub async fn finish_added(&mut self) {
        let ServerMessage::Welcome { welcome, epoch } = self
            .recv_until(|m| matches!(m, ServerMessage::Welcome { .. }))
            .await
        else {
            unreachable!()
        };
        self.session
            .join_from_welcome(welcome.as_slice(), T)
            .expect("welcome");
        self.send(&ClientMessage::WelcomeAck { epoch }).await;
    }

    /// Sends a key package and joins from the Welcome that follows.
    pub async fn get_added(&mut self) {
        self.get_added_later().await;
        self.finish_added().await;
    }
}
