"""Stage `ingest_bandit`: logged bandit feedback (the Open Bandit Dataset sample, or your own logs
laid out the same way) -> tidy Parquet, each log checked by the validation gate's bandit suite."""

from __future__ import annotations

import json
import sys
import time
import zipfile
from pathlib import Path

import yaml

from recause.artifacts import atomic_path
from recause.config import load_params
from recause.config.data import WheelSource
from recause.config.ope import BanditParams
from recause.data.wheels import locate_wheel
from recause.errors import InputDataError, ValidationFailed
from recause.layout import LAYOUT
from recause.ope.logs import obd_item_context, obd_log
from recause.validation.gate import check_table
from recause.validation.runner import GreatExpectations
from tasks._stage import run_stage

BANDIT_DIR = LAYOUT.bandit


class LogSource:
    """Bytes of each log, item-context file and the BTS prior, from the obp wheel or a directory."""

    def __init__(self, params: BanditParams) -> None:
        self.params = params
        self.archive: zipfile.ZipFile | None = None
        if params.source == "obd":
            obd = params.obd
            wheel = locate_wheel(WheelSource(package=obd.package, version=obd.version, cache_dir=obd.cache_dir))
            self.archive = zipfile.ZipFile(wheel)

    def read(self, relative: str) -> tuple[bytes, str]:
        if self.archive is not None:
            member = f"{self.params.obd.path}/{relative}"
            try:
                return self.archive.read(member), member
            except KeyError:
                raise InputDataError(f"{self.archive.filename} has no {member}") from None
        path = Path(self.params.directory or ".") / relative
        if not path.is_file():
            raise InputDataError(f"bandit log not found: {path} (bandit.directory)")
        return path.read_bytes(), str(path)

    def prior(self) -> tuple[dict, str]:
        if self.archive is not None:
            return yaml.safe_load(self.archive.read(self.params.obd.prior_path)), self.params.obd.prior_path
        path = Path(self.params.directory or ".") / "prior_bts.yaml"
        if not path.is_file():
            raise InputDataError(f"BTS prior not found: {path}")
        return yaml.safe_load(path.read_text(encoding="utf-8")), str(path)


def main() -> None:
    params = load_params()
    source = LogSource(params.bandit)
    runner = GreatExpectations()
    now = int(time.time())
    failures: list[str] = []
    with atomic_path(BANDIT_DIR) as tmp:
        tmp.mkdir(parents=True)
        for campaign in params.bandit.campaigns:
            data, name = source.read(f"{params.bandit.policies[0]}/{campaign}/item_context.csv")
            obd_item_context(data, name).to_parquet(tmp / f"items_{campaign}.parquet", index=False)
            for policy in params.bandit.policies:
                data, name = source.read(f"{policy}/{campaign}/{campaign}.csv")
                log = obd_log(data, name)
                check = check_table("bandit", log, name, params.validate_, now, runner)
                failures += check.failures
                log.to_parquet(tmp / f"{policy}_{campaign}.parquet", index=False)
                print(f"ingest_bandit: {name}: {len(log):,} rounds, {int(log['click'].sum())} clicks")
        prior, name = source.prior()
        (tmp / "prior_bts.json").write_text(json.dumps(prior), encoding="utf-8")
        if failures:
            for message in failures:
                print(f"validation: {message}", file=sys.stderr)
            raise ValidationFailed(failures[0] + (f" (+{len(failures) - 1} more)" if len(failures) > 1 else ""))


if __name__ == "__main__":
    run_stage(main)
