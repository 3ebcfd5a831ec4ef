//! The russh `Handler` impl: it translates russh callbacks into calls on [`Connection`]
//! and holds no logic of its own.
//!
//! Every call that can wait on the database or the network is boxed. russh awaits the
//! handler's futures inside the connection's own task, so that task is as large as the
//! largest of them for the connection's whole life: unboxed, the login and audit futures
//! made each idle connection's task about 40 KiB. Boxed, a call's state lives only while
//! the call runs. The per-packet calls (`data`, `channel_eof`) stay unboxed: they are
//! small and hot.

use russh::keys::Certificate;
use russh::server::{Auth, ChannelOpenHandle, Handler, Msg, PublicKeyOffer, Response, Session, VerifiedPublicKey};
use russh::{Channel, ChannelId, Pty, Sig};

use gatehouse_core::audit::AuditKind;

use crate::connection::Connection;

impl Handler for Connection {
    type Error = russh::Error;

    async fn auth_none(&mut self, user: &str) -> Result<Auth, Self::Error> {
        Ok(Box::pin(Connection::auth_none(self, user)).await)
    }

    async fn auth_password(&mut self, user: &str, password: &str) -> Result<Auth, Self::Error> {
        Ok(Box::pin(Connection::auth_password(self, user, password)).await)
    }

    async fn auth_publickey_offered(&mut self, user: &str, offer: PublicKeyOffer<'_>) -> Result<Auth, Self::Error> {
        Ok(Box::pin(Connection::auth_publickey_offered(self, user, offer.public_key)).await)
    }

    async fn auth_publickey(&mut self, user: &str, key: VerifiedPublicKey<'_>) -> Result<Auth, Self::Error> {
        Ok(Box::pin(Connection::auth_publickey(self, user, key.public_key, key.signature)).await)
    }

    async fn auth_succeeded(&mut self, session: &mut Session) -> Result<(), Self::Error> {
        // Once per connection (OpenSSH's client ends a connection that announces twice):
        // clients with UpdateHostKeys learn the next key of a rotation, forget retired ones.
        session.announce_host_keys()
    }

    async fn auth_openssh_certificate(&mut self, _user: &str, _certificate: &Certificate) -> Result<Auth, Self::Error> {
        // No certificate authority is configured: certificates are not a credential here.
        Ok(Auth::Reject { proceed_with_methods: None, partial_success: false })
    }

    async fn auth_keyboard_interactive<'a>(
        &'a mut self,
        user: &str,
        _submethods: &str,
        response: Option<Response<'a>>,
    ) -> Result<Auth, Self::Error> {
        Ok(Box::pin(Connection::auth_keyboard_interactive(self, user, response)).await)
    }

    async fn channel_open_session(
        &mut self,
        channel: Channel<Msg>,
        reply: ChannelOpenHandle,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        Box::pin(self.open_session(channel, reply)).await;
        Ok(())
    }

    async fn channel_open_direct_tcpip(
        &mut self,
        channel: Channel<Msg>,
        host_to_connect: &str,
        port_to_connect: u32,
        _originator_address: &str,
        _originator_port: u32,
        reply: ChannelOpenHandle,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        Box::pin(self.direct_tcpip(channel, host_to_connect, port_to_connect, reply)).await;
        Ok(())
    }

    async fn channel_open_x11(
        &mut self,
        _channel: Channel<Msg>,
        _originator_address: &str,
        _originator_port: u32,
        reply: ChannelOpenHandle,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        Box::pin(self.refuse_channel(AuditKind::ForwardX11, reply)).await;
        Ok(())
    }

    async fn channel_open_forwarded_tcpip(
        &mut self,
        _channel: Channel<Msg>,
        _host_to_connect: &str,
        _port_to_connect: u32,
        _originator_address: &str,
        _originator_port: u32,
        reply: ChannelOpenHandle,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        Box::pin(self.refuse_channel(AuditKind::ForwardForwarded, reply)).await;
        Ok(())
    }

    async fn channel_open_direct_streamlocal(
        &mut self,
        _channel: Channel<Msg>,
        _socket_path: &str,
        reply: ChannelOpenHandle,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        Box::pin(self.refuse_channel(AuditKind::ForwardStreamlocal, reply)).await;
        Ok(())
    }

    async fn pty_request(
        &mut self,
        channel: ChannelId,
        term: &str,
        col_width: u32,
        row_height: u32,
        _pix_width: u32,
        _pix_height: u32,
        _modes: &[(Pty, u32)],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        Box::pin(self.pty(channel, term, col_width, row_height, session)).await;
        Ok(())
    }

    async fn x11_request(
        &mut self,
        channel: ChannelId,
        _single_connection: bool,
        _x11_auth_protocol: &str,
        _x11_auth_cookie: &str,
        _x11_screen_number: u32,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        Box::pin(self.refuse_request(AuditKind::ForwardX11)).await;
        session.channel_failure(channel)?;
        Ok(())
    }

    async fn env_request(
        &mut self,
        channel: ChannelId,
        _variable_name: &str,
        _variable_value: &str,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        // The environment is the gateway's to set, not the client's.
        session.channel_failure(channel)?;
        Ok(())
    }

    async fn shell_request(&mut self, channel: ChannelId, session: &mut Session) -> Result<(), Self::Error> {
        Box::pin(self.shell(channel, session)).await;
        Ok(())
    }

    async fn exec_request(
        &mut self,
        channel: ChannelId,
        data: &[u8],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        Box::pin(self.exec(channel, data, session)).await;
        Ok(())
    }

    async fn subsystem_request(
        &mut self,
        channel: ChannelId,
        name: &str,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        Box::pin(self.subsystem(channel, name, session)).await;
        Ok(())
    }

    async fn window_change_request(
        &mut self,
        channel: ChannelId,
        col_width: u32,
        row_height: u32,
        _pix_width: u32,
        _pix_height: u32,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        self.resize(channel, col_width, row_height);
        Ok(())
    }

    async fn agent_request(&mut self, channel: ChannelId, _session: &mut Session) -> Result<bool, Self::Error> {
        Ok(Box::pin(self.agent(channel)).await)
    }

    async fn tcpip_forward(
        &mut self,
        _address: &str,
        _port: &mut u32,
        _session: &mut Session,
    ) -> Result<bool, Self::Error> {
        Ok(Box::pin(self.refuse_request(AuditKind::ForwardRemote)).await)
    }

    async fn streamlocal_forward(&mut self, _socket_path: &str, _session: &mut Session) -> Result<bool, Self::Error> {
        Ok(Box::pin(self.refuse_request(AuditKind::ForwardStreamlocal)).await)
    }

    async fn signal(&mut self, channel: ChannelId, signal: Sig, _session: &mut Session) -> Result<(), Self::Error> {
        self.signal(channel, gatehouse_shell::proxy::sig_name(&signal));
        Ok(())
    }

    async fn data(&mut self, channel: ChannelId, data: &[u8], _session: &mut Session) -> Result<(), Self::Error> {
        Connection::data(self, channel, data).await;
        Ok(())
    }

    async fn channel_eof(&mut self, channel: ChannelId, _session: &mut Session) -> Result<(), Self::Error> {
        self.eof(channel).await;
        Ok(())
    }

    async fn channel_close(&mut self, channel: ChannelId, _session: &mut Session) -> Result<(), Self::Error> {
        self.closed(channel);
        Ok(())
    }
}
