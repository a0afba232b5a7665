"""irctest controller for natter (https://github.com/progval/irctest).

Copied into irctest's `irctest/controllers/` by `tools/irctest/run.sh`, then selected with
`pytest --controller irctest.controllers.natter`. It starts `natter serve` in the foreground
from a TOML file written per test: only the IRC door on the port irctest picked, an in-memory
store, and no flood limits or command budget (irctest sends bursts from loopback; ergo's
controller turns its fake lag off the same way).
"""

import os
import shutil
from typing import Optional, Set, Type

from irctest.basecontrollers import BaseServerController, DirectoryBasedController
from irctest.runner import NotImplementedByController

TEMPLATE_CONFIG = """
tcp = "off"
udp = "off"
irc = "{hostname}:{port}"
db = ":memory:"
msg_rate = 0
command_rate = 0
server_name = "My.Little.Server"
irc_lobby = false
opers = ["operuser:operpassword"]
register_timeout = 30
{password_field}
{http_field}
"""


class NatterController(BaseServerController, DirectoryBasedController):
    software_name = "natter"
    supported_sasl_mechanisms: Set[str] = {"PLAIN", "SCRAM-SHA-256"}
    supports_sts = False

    def run(
        self,
        hostname: str,
        port: int,
        *,
        password: Optional[str],
        ssl: bool,
        run_services: bool,
        faketime: Optional[str],
        websocket_hostname: Optional[str],
        websocket_port: Optional[int],
    ) -> None:
        if ssl:
            raise NotImplementedByController("TLS")
        # NickServ is built in (as in ergo): nothing more to run for `run_services`.
        # WebSocket: natter's HTTP listener, which upgrades on any of its pages.
        http_field = (
            'http = "{}:{}"'.format(websocket_hostname, websocket_port)
            if websocket_port is not None
            else 'http = "off"'
        )
        assert self.proc is None
        self.port = port
        self.hostname = hostname
        self.create_config()
        password_field = 'password = "{}"'.format(password) if password else ""
        with self.open_file("natter.toml") as fd:
            fd.write(
                TEMPLATE_CONFIG.format(
                    hostname=hostname,
                    port=port,
                    password_field=password_field,
                    http_field=http_field,
                )
            )
        binary = os.environ.get("NATTER_BIN") or shutil.which("natter") or "natter"
        assert self.directory
        if faketime and shutil.which("faketime"):
            faketime_cmd = ["faketime", "-f", faketime]
            self.faketime_enabled = True
        else:
            faketime_cmd = []
        self.proc = self.execute(
            [*faketime_cmd, binary, "serve", "--config", self.directory / "natter.toml"]
        )


    def registerUser(
        self,
        case,  # irctest.cases.BaseServerTestCase
        username: str,
        password: Optional[str] = None,
    ) -> None:
        """Registers `username` the way a user does: logged in under that nick, it asks
        NickServ to REGISTER it, and waits for the 900 that says it is logged in."""
        assert password, "natter accounts need a password"
        client = case.addClient(show_io=False)
        case.sendLine(client, "NICK " + username)
        case.sendLine(client, "USER r e g :user")
        while case.getRegistrationMessage(client).command != "001":
            pass
        case.getMessages(client)
        case.sendLine(client, "PRIVMSG NickServ :REGISTER " + password)
        while True:
            msg = case.getMessage(client)
            if msg.command == "900":
                break
            if msg.command == "NOTICE" and msg.prefix and msg.prefix.startswith("NickServ"):
                assert "Account created" in msg.params[-1], msg
        case.sendLine(client, "QUIT")
        case.assertDisconnected(client)


def get_irctest_controller_class() -> Type[NatterController]:
    return NatterController
