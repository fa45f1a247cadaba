"""What a pass shows, gathered by the services and handed to the pure builders."""

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class PassContent:
    serial_number: str
    merchant_id: str
    merchant_name: str
    member_name: str
    points_balance: int
    tier_name: str
    referral_code: str
    referral_url: str
    locale: str
    background_color: str = "#1f5199"
    foreground_color: str = "#ffffff"
    label_color: str = "#dbe6f5"

    def as_dict(self) -> dict:
        return asdict(self)

    @property
    def visible(self) -> dict:
        """What the holder sees: a change of any of these is an update to push."""
        return {
            "points_balance": self.points_balance,
            "tier_name": self.tier_name,
            "referral_code": self.referral_code,
            "member_name": self.member_name,
        }
