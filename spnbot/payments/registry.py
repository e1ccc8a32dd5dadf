"""The providers this shop offers, built once in the composition root from the settings."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from spnbot.payments.base import PaymentProvider


@dataclass(frozen=True)
class Offer:
    """One way to pay a customer can pick: a provider and, for some, a method of it."""

    provider: str
    method: str | None


class ProviderRegistry:
    def __init__(self, providers: Iterable[PaymentProvider]) -> None:
        self._providers: dict[str, PaymentProvider] = {}
        paths: set[str] = set()
        for provider in providers:
            if provider.name in self._providers:
                raise ValueError(f"two payment providers are named {provider.name!r}")
            if provider.webhook_path:
                if provider.webhook_path in paths:
                    raise ValueError(f"two payment providers listen on {provider.webhook_path}")
                paths.add(provider.webhook_path)
            self._providers[provider.name] = provider

    def get(self, name: str) -> PaymentProvider | None:
        return self._providers.get(name)

    def __iter__(self) -> Iterator[PaymentProvider]:
        return iter(self._providers.values())

    def __len__(self) -> int:
        return len(self._providers)

    @property
    def names(self) -> list[str]:
        return list(self._providers)

    def offers(self) -> list[Offer]:
        """What the customer chooses from, in the order the providers were registered."""
        return [Offer(p.name, method) for p in self._providers.values() for method in p.methods]

    def offers_method(self, provider: str, method: str | None) -> bool:
        return Offer(provider, method) in self.offers()
