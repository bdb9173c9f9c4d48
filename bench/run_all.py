"""``make bench``: run every benchmark and write bench/report.md (batch_vs_mapping alone takes 15-20 minutes)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import batch
import batch_vs_mapping
import hook_overhead
import import_cost
import large_output
import mailbox_reads
import polling_scorecard
import spend_view
import triggerer_finish
import triggerer_scale
import webhook_attacks
import webhook_e2e


def main() -> None:
    lines: list[str] = ["# Benchmark report", ""]
    for bench in (
        polling_scorecard,
        import_cost,
        hook_overhead,
        large_output,
        triggerer_scale,
        triggerer_finish,
        webhook_e2e,
        mailbox_reads,
        webhook_attacks,
        spend_view,
    ):
        lines += [*bench.main(), ""]
    lines += [*batch.main(["--quick"]), ""]
    lines += [*batch_vs_mapping.main([]), ""]
    report = Path(__file__).parent / "report.md"
    report.write_text("\n".join(lines))
    print(f"\nwritten to {report}")


if __name__ == "__main__":
    main()
