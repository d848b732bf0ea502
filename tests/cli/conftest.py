import pytest
from _cli_tables import new_user_table


@pytest.fixture
def small_csv(tmp_path):
    """A small, quick table (120 rows) for the commands' error paths."""
    frame, _ = new_user_table(n=120, seed=1)
    path = tmp_path / "small.csv"
    frame.to_csv(path, index=False)
    return path
