"""A fake APNs: a real HTTP/2 server on loopback (the `h2` protocol library, cleartext with
prior knowledge) that records pushes and answers from a script. httpx talks to it with
`http2=True` exactly as it talks to api.push.apple.com, minus TLS."""

import json
import socket
import threading
from dataclasses import dataclass, field

import h2.config
import h2.connection
import h2.events


@dataclass
class Push:
    path: str
    headers: dict
    body: bytes
    http_version: str = "HTTP/2"

    @property
    def device_token(self) -> str:
        return self.path.rsplit("/", 1)[-1]


@dataclass
class FakeApns:
    """`with FakeApns() as apns:`; `apns.url`; `apns.pushes`; `apns.respond(push) -> (status, dict|None)`."""

    respond: callable = None
    pushes: list = field(default_factory=list)

    def __post_init__(self):
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind(("127.0.0.1", 0))
        self._socket.listen(16)
        self.url = f"http://127.0.0.1:{self._socket.getsockname()[1]}"
        self._stopping = False

    def __enter__(self):
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stopping = True
        self._socket.close()

    def _serve(self):
        while not self._stopping:
            try:
                client, _address = self._socket.accept()
            except OSError:
                return
            threading.Thread(target=self._connection, args=(client,), daemon=True).start()

    def _connection(self, client):
        connection = h2.connection.H2Connection(config=h2.config.H2Configuration(client_side=False))
        connection.initiate_connection()
        client.sendall(connection.data_to_send())
        streams: dict[int, dict] = {}
        try:
            while True:
                data = client.recv(65535)
                if not data:
                    return
                for event in connection.receive_data(data):
                    if isinstance(event, h2.events.RequestReceived):
                        headers = {
                            (k.decode() if isinstance(k, bytes) else k): (v.decode() if isinstance(v, bytes) else v)
                            for k, v in event.headers
                        }
                        streams[event.stream_id] = {"headers": headers, "body": b""}
                    elif isinstance(event, h2.events.DataReceived):
                        streams[event.stream_id]["body"] += event.data
                        connection.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
                    elif isinstance(event, h2.events.StreamEnded):
                        request = streams.pop(event.stream_id)
                        push = Push(path=request["headers"][":path"], headers=request["headers"], body=request["body"])
                        self.pushes.append(push)
                        status, body = (self.respond or (lambda p: (200, None)))(push)
                        payload = json.dumps(body).encode() if body is not None else b""
                        response_headers = [(":status", str(status)), ("apns-id", "fake-apns-id")]
                        if payload:
                            response_headers.append(("content-type", "application/json"))
                        connection.send_headers(event.stream_id, response_headers, end_stream=not payload)
                        if payload:
                            connection.send_data(event.stream_id, payload, end_stream=True)
                client.sendall(connection.data_to_send())
        except OSError:
            return
        finally:
            client.close()
