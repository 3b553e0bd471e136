from isosweep.analysis.db import connect
from isosweep.schema import TABLES


def test_views_over_an_empty_store_have_every_column(tmp_path):
    con = connect(str(tmp_path / "nothing-yet"))
    for table, schema in TABLES.items():
        cur = con.execute(f"select * from {table}")
        assert [d[0] for d in cur.description] == schema.names
        assert cur.fetchall() == []


def test_views_over_a_real_store(smoke_store):
    con = connect(str(smoke_store))
    assert con.execute("select count(*) from trials").fetchone()[0] == 90
    # Joins across views work on the documented keys.
    n = con.execute("select count(*) from trials t join dims d using (trial_key) where d.rank = 1").fetchone()[0]
    assert n == 90
    assert con.execute("select count(distinct study) from points").fetchone()[0] == 1
