"""The site file's loader: line numbers in errors, relative paths anchored at the file."""

from __future__ import annotations

from pathlib import Path

import pytest

from gridguard.edge.run import Overrides, load_config
from gridguard.site.config import ConfigError, ControlConfig, line_of, load_site_config

pytestmark = pytest.mark.unit

TEXT = """[device]
uid = "x"

[mqtt]
prefix = "v1/x"
modbus = 1

[[meters]]
id = 1

[[meters]]
id = 2
ct = 0
"""


@pytest.mark.parametrize(
    ("loc", "line"),
    [
        (("mqtt", "prefix"), 5),
        (("mqtt",), 4),
        (("meters", 1, "ct"), 13),
        (("meters", 0, "ct"), 8),
        (("meters", 1, "modbus", "port"), 11),
        (("store", "url"), None),
    ],
    ids=["key", "table", "second-array-entry", "default-key-header", "nested", "absent-table"],
)
def test_line_of(loc: tuple[int | str, ...], line: int | None) -> None:
    """A key's own line; its table's header when the key is a default (not in the text);
    entries of an array of tables counted as they appear; None when the table is absent.
    The key `modbus` under [mqtt] must not match the second meter's (tables are scoped)."""
    assert line_of(TEXT, loc) == line


def test_error_names_line_and_one_based_entry(tmp_path: Path) -> None:
    """The second meter's bad ct: line 13, meters[2] (as a reader counts [[meters]])."""
    config = tmp_path / "edge.toml"
    config.write_text(TEXT.replace("modbus = 1\n", ""))
    with pytest.raises(ConfigError) as caught:
        load_site_config(config)
    assert f"{config}:12: meters[2].ct: Input should be greater than 0" in str(caught.value)


SITE = '[device]\nuid = "x"\n\n[store]\nurl = "{url}"\n'


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("sqlite:///data/edge.db", "sqlite:///{dir}/data/edge.db"),
        ("data/edge.db", "{dir}/data/edge.db"),
        ("sqlite:////var/lib/edge.db", "sqlite:////var/lib/edge.db"),
        ("postgresql://postgres@127.0.0.1/test", "postgresql://postgres@127.0.0.1/test"),
        ("memory://", "memory://"),
    ],
    ids=["sqlite-relative", "bare-relative", "sqlite-absolute", "postgres", "memory"],
)
def test_relative_store_follows_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, url: str, expected: str
) -> None:
    """From any working folder, one file names one database: relative to the file's folder."""
    folder = tmp_path / "site"
    folder.mkdir()
    (folder / "edge.toml").write_text(SITE.format(url=url))
    monkeypatch.chdir(tmp_path)
    site = load_config(Path("site/edge.toml"))
    assert site.store.url == expected.format(dir=folder)


def test_default_store_follows_the_file_but_db_option_the_cwd(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No [store]: the default gridguard-data/edge.db beside the file; --db as typed."""
    folder = tmp_path / "site"
    folder.mkdir()
    (folder / "edge.toml").write_text('[device]\nuid = "x"\n')
    monkeypatch.chdir(tmp_path)
    assert load_config(Path("site/edge.toml")).store.url == (
        f"sqlite:///{folder}/gridguard-data/edge.db"
    )
    typed = load_config(Path("site/edge.toml"), Overrides(db="here.db"))
    assert typed.store.url == "here.db"


def test_maps_dir_follows_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """site.maps_dir is relative to the file, like the store."""
    folder = tmp_path / "site"
    folder.mkdir()
    (folder / "edge.toml").write_text('[device]\nuid = "x"\n\n[site]\nmaps_dir = "maps"\n')
    monkeypatch.chdir(tmp_path)
    assert load_config(Path("site/edge.toml")).site.maps_dir == folder / "maps"


def test_meter_delay_beyond_two_periods_is_refused() -> None:
    """The alignment compensates up to two cycles: a later meter is a configuration error
    naming the field and the rule, not a value silently cut to two cycles."""
    assert ControlConfig(period_s=1.0, meter_delay_s=2.0).meter_delay_s == 2.0
    with pytest.raises(ValueError, match=r"meter_delay_s 2.5 must be at most 2 x period_s"):
        ControlConfig(period_s=1.0, meter_delay_s=2.5)


def test_command_delay_beyond_two_periods_is_refused() -> None:
    """The view ahead of setpoints in flight reaches two cycles: a later one is refused."""
    assert ControlConfig(period_s=1.0, command_delay_s=2.0).command_delay_s == 2.0
    with pytest.raises(ValueError, match=r"command_delay_s 2.5 must be at most 2 x period_s"):
        ControlConfig(period_s=1.0, command_delay_s=2.5)
