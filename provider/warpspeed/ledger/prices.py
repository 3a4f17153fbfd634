"""Prices of compute and storage: the price table file and its validated dataclasses (pure).

The default table is ``warpspeed/prices/aws-us-east-1.yaml`` (packaged with the provider).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from warpspeed.config.fields import integer, named, number
from warpspeed.config.yaml_file import read_mapping
from warpspeed.exceptions import WarpSpeedConfigError

PRICES_DIR = Path(__file__).resolve().parent.parent / "prices"
DEFAULT_PRICE_TABLE = PRICES_DIR / "aws-us-east-1.yaml"
MARKETS = ("ON_DEMAND", "SPOT", "RESERVED")
"""EC2 markets: EMR reports ON_DEMAND or SPOT; RESERVED is on-demand capacity covered by RIs."""
ROLES = ("master", "core", "task")


def _fraction(value: Any, name: str) -> float:
    fraction = number(name, value)
    if fraction >= 1:
        raise WarpSpeedConfigError(f"{name} must be a fraction in [0, 1), got {value!r}")
    return fraction


@dataclass(frozen=True)
class InstancePrice:
    """One EC2 instance type: size, on-demand price and EMR fee, in $ per instance-hour."""

    instance_type: str
    vcpu: int
    memory_gib: float
    on_demand: float
    emr_fee: float

    def __post_init__(self) -> None:
        where = f"instances.{self.instance_type}"
        integer(f"{where}.vcpu", self.vcpu)
        number(f"{where}.memory_gib", self.memory_gib, positive=True)
        number(f"{where}.on_demand", self.on_demand, positive=True)
        number(f"{where}.emr_fee", self.emr_fee)


@dataclass(frozen=True)
class ServerlessPrices:
    """EMR Serverless rates ($ per vCPU-hour, per GB-hour) and its minimum billing per worker."""

    vcpu_hour: float = 0.052624
    """Dollars per vCPU-hour of a worker (driver or executor)."""
    gb_hour: float = 0.0057785
    """Dollars per GB-hour of a worker's memory."""
    storage_gb_hour: float = 0.000111
    """Dollars per GB-hour of ephemeral storage beyond the 20 GB a worker gets free (read, not yet used: the
    simulated jobs stay within the free storage)."""
    minimum_billed_seconds: float = 60.0
    """Shortest time a worker is billed for, however soon it ends."""

    def __post_init__(self) -> None:
        for name in ("vcpu_hour", "gb_hour", "storage_gb_hour", "minimum_billed_seconds"):
            number(f"emr_serverless.{name}", getattr(self, name))


@dataclass(frozen=True)
class S3Prices:
    """S3 request and storage prices (S3 Standard): PUT/COPY/POST/LIST and GET/HEAD/other per 1,000 requests.

    :param source: where the prices come from (the table's ``s3.source``, e.g. the S3 pricing page).
    """

    put_per_1000: float = 0.005
    get_per_1000: float = 0.0004
    storage_gb_month: float = 0.023
    source: str = ""

    def __post_init__(self) -> None:
        for name in ("put_per_1000", "get_per_1000", "storage_gb_month"):
            number(f"s3.{name}", getattr(self, name))

    def requests_cost(self, gets: float, puts: float) -> float:
        """Return the cost of ``gets`` GET-class and ``puts`` PUT-class requests."""
        return gets / 1000 * self.get_per_1000 + puts / 1000 * self.put_per_1000


@dataclass(frozen=True)
class FleetShape:
    """Part of a cluster: ``count`` instances of one type, in one role and market."""

    role: str
    instance_type: str
    count: int
    market: str = "ON_DEMAND"

    def __post_init__(self) -> None:
        if self.role not in ROLES:
            raise WarpSpeedConfigError(f"fleet role {self.role!r} must be one of {', '.join(ROLES)}")
        if self.market not in MARKETS:
            raise WarpSpeedConfigError(f"fleet market {self.market!r} must be one of {', '.join(MARKETS)}")
        integer("fleet count", self.count, least=0)


@dataclass(frozen=True)
class PriceTable:
    """Every price the cost model uses; load with :meth:`load`.

    :param spot_discount: Spot price = on-demand x (1 - discount), unless
        ``spot_discount_by_type`` names the type.
    :param reserved_discount: discount of RESERVED (RI-covered on-demand) capacity.
    :param reference_cluster: the cluster a batch is assumed to hold when only its run time is known.
    """

    id: str
    instances: Mapping[str, InstancePrice]
    spot_discount: float = 0.65
    spot_discount_by_type: Mapping[str, float] = field(default_factory=dict)
    reserved_discount: float = 0.0
    serverless: ServerlessPrices = field(default_factory=ServerlessPrices)
    s3: S3Prices = field(default_factory=S3Prices)
    sqs_per_million_requests: float = 0.40
    reference_cluster: tuple[FleetShape, ...] = ()
    region: str = ""
    currency: str = "USD"

    def __post_init__(self) -> None:
        if not self.instances:
            raise WarpSpeedConfigError(f"price table {self.id!r}: 'instances' is empty")
        _fraction(self.spot_discount, "spot_discount")
        _fraction(self.reserved_discount, "reserved_discount")
        for itype, discount in self.spot_discount_by_type.items():
            self.instance(itype)
            _fraction(discount, f"spot_discount_by_type.{itype}")
        for fleet in self.reference_cluster:
            self.instance(fleet.instance_type)

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any], source: str = "price table") -> PriceTable:
        """Build a price table from its parsed YAML/JSON document."""
        if not isinstance(doc, Mapping):
            raise WarpSpeedConfigError(f"{source}: expected a mapping at the top level")
        raw_instances = doc.get("instances")
        if not isinstance(raw_instances, Mapping) or not raw_instances:
            raise WarpSpeedConfigError(f"{source}: 'instances' must be a non-empty mapping")
        try:
            instances = {
                str(name): InstancePrice(instance_type=str(name), **spec)
                for name, spec in raw_instances.items()
            }
            return cls(
                id=str(doc.get("id") or Path(source).stem),
                region=str(doc.get("region") or ""),
                currency=str(doc.get("currency") or "USD"),
                instances=instances,
                spot_discount=doc.get("spot_discount", 0.65),
                spot_discount_by_type=dict(doc.get("spot_discount_by_type") or {}),
                reserved_discount=doc.get("reserved_discount", 0.0),
                serverless=ServerlessPrices(**(doc.get("emr_serverless") or {})),
                s3=S3Prices(**(doc.get("s3") or {})),
                sqs_per_million_requests=number(
                    "sqs.per_million_requests", (doc.get("sqs") or {}).get("per_million_requests", 0.40)),
                reference_cluster=tuple(FleetShape(**f) for f in doc.get("reference_cluster") or ()),
            )
        except TypeError as err:
            raise WarpSpeedConfigError(f"{source}: {err}") from err

    @classmethod
    def load(cls, path: str | Path | None = None) -> PriceTable:
        """Read a price table file (YAML or JSON); the default is the bundled us-east-1 table."""
        path = Path(path) if path else DEFAULT_PRICE_TABLE
        return cls.from_dict(read_mapping(path, "price table"), source=str(path))

    def instance(self, instance_type: str) -> InstancePrice:
        """Return one instance type's prices, or say which types the table knows."""
        return named(self.instances, instance_type, f"price table {self.id!r} has no instance type {instance_type!r}",
                     listed="known")

    def ec2_hourly(self, instance_type: str, market: str) -> float:
        """Return the EC2 price of one instance-hour in ``market``."""
        base = self.instance(instance_type).on_demand
        if market == "SPOT":
            return base * (1 - self.spot_discount_by_type.get(instance_type, self.spot_discount))
        if market == "RESERVED":
            return base * (1 - self.reserved_discount)
        if market == "ON_DEMAND":
            return base
        raise WarpSpeedConfigError(f"unknown market {market!r}; use one of {', '.join(MARKETS)}")

    def emr_fee_hourly(self, instance_type: str) -> float:
        """Return the EMR fee of one instance-hour (the same in every market)."""
        return self.instance(instance_type).emr_fee

    def serverless_cost(self, vcpu_hours: float, gb_hours: float) -> float:
        """Return the EMR Serverless cost of some vCPU-hours and GB-hours."""
        return vcpu_hours * self.serverless.vcpu_hour + gb_hours * self.serverless.gb_hour
