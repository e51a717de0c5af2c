"""Everything one running server holds: settings, the engine (once loaded), services and metrics."""

from __future__ import annotations

from lmi_serve.generation import Engine
from lmi_serve.lmi_schema import LmiService
from lmi_serve.metrics import Metrics
from lmi_serve.openai_schema import OpenAIService, load_chat_template
from lmi_serve.peers import ApiSlot
from lmi_serve.serving import Generator
from lmi_serve.settings import RuntimeSettings


class AppState:
    def __init__(self, settings: RuntimeSettings, engine: Engine | None = None, peers: ApiSlot | None = None
                 ) -> None:
        """`peers`: this process's slot when it is one of several API processes (`lmi_serve.peers`)."""
        server = settings.server
        self.settings = settings
        self.engine = engine
        self.failure: str | None = None
        self.draining = False
        self.exit_code = 0
        self.model_name = settings.model.name
        self.max_payload_bytes = server.max_payload_bytes
        self.output_formatter = server.output_formatter
        self.metrics = Metrics()
        self.peers = peers
        self.generator = Generator(lambda: self.engine, server.job_queue_size, server.predict_timeout_s,
                                   on_in_flight=self._in_flight_changed,
                                   container_in_flight=peers.total_in_flight if peers else None)
        self.lmi = LmiService(self.generator, server.default_max_new_tokens)
        template = settings.config.get("chat_template")
        self.openai = OpenAIService(self.generator, self.model_name, server.default_max_new_tokens,
                                    load_chat_template(str(template) if template else None))

    def _in_flight_changed(self, value: int) -> None:
        self.metrics.set_in_flight(value)
        if self.peers is not None:
            self.peers.set_in_flight(value)

    def healthy(self) -> bool:
        return (self.engine is not None and self.failure is None and not self.draining and self.engine.is_healthy()
                and (self.peers is None or self.peers.all_ready()))

    def status(self) -> str:
        if self.failure:
            return f"failed: {self.failure}"
        if self.draining:
            return "shutting down"
        if self.engine is None:
            return "loading"
        if self.engine.is_healthy():
            return "waiting for the other API processes to load"
        return "engine unhealthy"
