"""The one exception tree of loragate.

    LoragateError                  500 server_error
    ├── ConfigError                (CLI only: bad settings, exit 1)
    ├── BadRequest                 400 invalid_request_error
    │   ├── ContextLengthExceeded  400 ... / context_length_exceeded
    │   ├── InvalidCorrection      400 ... / invalid_correction (param: correction)
    │   ├── RegistryError          400 ... / registry_error (a version change that can't be made)
    │   └── EmptyDataset           400 ... / empty_dataset (nothing in the window to train on)
    ├── Unauthorized               401 authentication_error / invalid_api_key
    ├── Forbidden                  403 permission_error / forbidden_host, forbidden_origin
    ├── NotFound                   404 invalid_request_error / not_found
    │   ├── ModelNotFound          404 ... / model_not_found
    │   ├── InteractionNotFound    404 ... / interaction_not_found
    │   └── DatasetNotFound        404 ... / dataset_not_found
    ├── ClientDisconnected         499 client_closed_request (never seen: the client left)
    ├── EngineError                500 server_error
    ├── JobError                   500 server_error / job_failed (a trainer stage failed)
    │   ├── BaseModelError         500 ... / base_model_unusable
    │   ├── TrainingError          500 ... / training_failed
    │   ├── TrainingInterrupted    500 ... / training_interrupted (Ctrl-C; `--resume` goes on)
    │   ├── ExportError            500 ... / export_failed
    │   │   └── ConverterError     500 ... / converter_failed
    │   └── EvalError              500 ... / eval_failed
    ├── UpstreamError              502 upstream_error
    │   ├── UpstreamTimeout        504 upstream_timeout
    │   └── DeployError            502 upstream_error / deploy_failed (Ollama refused a version)
    ├── ShuttingDown               503 service_unavailable / shutting_down
    └── StoreError                 503 service_unavailable / store_unavailable

Backends translate foreign errors into these at their boundary (`raise ... from exc`);
`gateway.api.errors` renders them as OpenAI or Ollama error bodies in one place, and the CLI
prints any of them as one line.
"""

from __future__ import annotations


class LoragateError(Exception):
    """Base class; `status`, `type` and `code` decide the wire error."""

    status: int = 500
    type: str = "server_error"
    code: str | None = None

    def __init__(self, message: str, *, param: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param


class ConfigError(LoragateError):
    """A setting or config file is wrong; the CLI prints it and exits 1."""


class BadRequest(LoragateError):
    status = 400
    type = "invalid_request_error"


class ContextLengthExceeded(BadRequest):
    code = "context_length_exceeded"


class Unauthorized(LoragateError):
    status = 401
    type = "authentication_error"
    code = "invalid_api_key"


class Forbidden(LoragateError):
    """A request from where the gateway does not serve (a web page's `Host` or `Origin`)."""

    status = 403
    type = "permission_error"

    def __init__(self, message: str, *, code: str) -> None:
        super().__init__(message)
        self.code = code


class NotFound(LoragateError):
    status = 404
    type = "invalid_request_error"
    code = "not_found"


class ModelNotFound(NotFound):
    code = "model_not_found"


class InteractionNotFound(NotFound):
    code = "interaction_not_found"


class ClientDisconnected(LoragateError):
    """The client closed the connection before its answer was ready; the work was stopped."""

    status = 499
    type = "client_closed_request"


class ShuttingDown(LoragateError):
    """A generation asked for while the gateway stops."""

    status = 503
    type = "service_unavailable"
    code = "shutting_down"


class EngineError(LoragateError):
    status = 500
    type = "server_error"


class UpstreamError(LoragateError):
    status = 502
    type = "upstream_error"


class UpstreamTimeout(UpstreamError):
    status = 504
    type = "upstream_timeout"


class DeployError(UpstreamError):
    """A version could not be put on a serving engine."""

    code = "deploy_failed"


class StoreError(LoragateError):
    """The database refused or failed a read or write (locked, full, gone, corrupt)."""

    status = 503
    type = "service_unavailable"
    code = "store_unavailable"


class RegistryError(BadRequest):
    """A registry change that cannot be made as asked."""

    code = "registry_error"


class EmptyDataset(BadRequest):
    """Nothing in the window can be trained on."""

    code = "empty_dataset"


class DatasetNotFound(NotFound):
    """No dataset folder by that hash or path."""

    code = "dataset_not_found"


class JobError(LoragateError):
    """A trainer stage (base, training, export, evaluation) failed; the message says why."""

    code = "job_failed"


class BaseModelError(JobError):
    """The base cannot be used: missing, unsupported architecture, unreadable."""

    code = "base_model_unusable"


class TrainingError(JobError):
    """Training cannot start or cannot go on; the message says what to change."""

    code = "training_failed"


class TrainingInterrupted(JobError):
    """Ctrl-C: the state is saved and `--resume` continues."""

    code = "training_interrupted"


class ExportError(JobError):
    """An artifact could not be made, or failed its checks."""

    code = "export_failed"


class ConverterError(ExportError):
    """The converters cannot be found, fetched or run."""

    code = "converter_failed"


class EvalError(JobError):
    """An evaluation that cannot be run as asked."""

    code = "eval_failed"


class InvalidCorrection(BadRequest):
    """A correction that does not fit the interaction it corrects."""

    code = "invalid_correction"

    def __init__(self, message: str) -> None:
        super().__init__(message, param="correction")
