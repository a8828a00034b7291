"""Warm and cold persona training: data building, rewrites and LoRA adapters."""
