"""Configuration: typed model plus the strict TOML loader that builds it."""

from .loader import load_config, load_config_text
from .model import (
    DEFAULT_CHANNELS,
    Config,
    FullAction,
    LimitsConfig,
    Location,
    PoolConfig,
    PoolKind,
    QueueConfig,
    RetentionConfig,
    Role,
    RoutingConfig,
    SlaTarget,
    StageConfig,
    Strategy,
    TenantConfig,
    TokenConfig,
)

__all__ = [
    "DEFAULT_CHANNELS",
    "Config",
    "FullAction",
    "LimitsConfig",
    "Location",
    "PoolConfig",
    "PoolKind",
    "QueueConfig",
    "RetentionConfig",
    "Role",
    "RoutingConfig",
    "SlaTarget",
    "StageConfig",
    "Strategy",
    "TenantConfig",
    "TokenConfig",
    "load_config",
    "load_config_text",
]
