"""The command line speaks in flags: its errors name ``--rate-per-user``, not Python parameters."""
from __future__ import annotations

import pytest

from playground import __version__
from playground.tools.cli import _count, _in_flags, main


def test_version(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0 and capsys.readouterr().out == f"playground {__version__}\n"


@pytest.mark.parametrize("text, users", [("5", 5), ("10k", 10_000), ("1M", 1_000_000), ("1.5M", 1_500_000),
                                         ("2.5k", 2_500), ("10_000", 10_000)])
def test_users_take_k_and_m_suffixes(text, users):
    assert _count(text) == users


@pytest.mark.parametrize("argv, message", [
    (["ladder", "--rate-per-user", "-1"], "argument --rate-per-user: must be a finite number > 0, got '-1'"),
    (["ladder", "--rate-per-user", "nan"], "argument --rate-per-user: must be a finite number > 0, got 'nan'"),
    (["ladder", "--users", "1.5"], "argument --users: must be whole numbers >= 1 such as 5000, 10k or 1.5M, got '1.5'"),
    (["ladder", "--users", "lots"], "argument --users: must be whole numbers such as 5000, 10k or 1.5M, got 'lots'"),
    (["ladder", "--slo-ms", "0"], "argument --slo-ms: must be a finite number > 0, got '0'"),
    (["ladder", "--budget-cores", "1"], "argument --budget-cores: must be a finite number >= 2, got '1'"),
    (["ladder", "--target-requests", "2.5"], "argument --target-requests: must be a whole number, got '2.5'"),
])
def test_bad_flags_are_named_as_flags(capsys, argv, message):
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1] == f"playground ladder: error: {message}"


def test_an_error_from_deeper_down_names_the_flag(capsys):
    assert main(["ladder", "--stages", "1", "--users", "5", "--duration-s", "1e9", "--quiet"]) == 2
    assert capsys.readouterr().err == ("playground: --duration-s must be at most 10,000,000 s (about 116 simulated "
                                       "days; see playground.limits), got 1000000000.0\n")
    assert _in_flags("requests_per_user_per_s must be > 0, got -1") == "--rate-per-user must be > 0, got -1"


def test_seed_has_help(capsys):
    with pytest.raises(SystemExit):
        main(["ladder", "--help"])
    assert "the same seed gives the" in capsys.readouterr().out
