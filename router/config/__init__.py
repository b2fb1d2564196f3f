"""Configuration: typed model plus the strict TOML loader that builds it."""

from .loader import load_config, load_config_text
from .model import (
    DEFAULT_CHANNELS,
    Config,
    FullAction,
    Location,
    PoolConfig,
    PoolKind,
    QueueConfig,
    RetentionConfig,
    RoutingConfig,
    SlaTarget,
    StageConfig,
    Strategy,
    TenantConfig,
)

__all__ = [
    "DEFAULT_CHANNELS",
    "Config",
    "FullAction",
    "Location",
    "PoolConfig",
    "PoolKind",
    "QueueConfig",
    "RetentionConfig",
    "RoutingConfig",
    "SlaTarget",
    "StageConfig",
    "Strategy",
    "TenantConfig",
    "load_config",
    "load_config_text",
]
