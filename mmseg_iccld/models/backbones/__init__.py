from .mit_sdpa import MixVisionTransformerSDPA  # noqa: F401
