"""TOTP tricks: replaying a code, codes outside the accepted window, and
brute force, which must hit the per-source limit and the user lockout
long before the code space (10^6) could be searched."""

import time

import pytest

from conftest import POLICY, Browser, PASSWORD, login, totp


def test_a_used_code_is_refused_when_replayed(shared):
    secret = shared.user("tina", groups=("staff",))
    code = totp(secret, time.time())

    first = login(Browser(shared.gw), "tina", secret, code=code)
    replay = login(Browser(shared.gw), "tina", secret, code=code)

    assert first[0] == 303
    assert replay[0] == 403
    assert "__Host-zt_session" not in replay[2].decode()


@pytest.mark.parametrize("offset", [-90, -60, 60, 90, -3600, 86400],
                         ids=["3 steps ago", "2 steps ago", "2 steps ahead",
                              "3 steps ahead", "an hour ago", "tomorrow"])
def test_a_code_outside_the_window_is_refused(shared, offset):
    name = "w%d" % (offset + 100000)
    secret = shared.user(name, groups=("staff",))

    status, _, _ = login(Browser(shared.gw), name, secret,
                         code=totp(secret, time.time() + offset))

    assert status == 403


def test_guessing_codes_locks_the_user_and_the_right_code_is_then_refused(
        shared):
    secret = shared.user("bruce", groups=("staff",))
    right = totp(secret, time.time())
    for guess in range(5):
        code = str(guess).zfill(6)
        if code == right:
            continue
        assert login(Browser(shared.gw), "bruce", secret, code=code)[0] \
            == 403

    assert login(Browser(shared.gw), "bruce", secret, code=right)[0] == 403


def test_brute_force_from_one_source_hits_the_rate_limit(make_gateway):
    from conftest import enroll_user
    gw = make_gateway(policy=POLICY, identity=True,
                      trustd_extra="source_limit 8\nlockout_threshold 1000")
    secret = enroll_user(gw, "alice", groups=("staff",))
    right = totp(secret, time.time())

    statuses = []
    for guess in range(30):
        code = str(guess).zfill(6)
        if code == right:
            continue
        statuses.append(login(Browser(gw), "alice", secret, code=code)[0])
        if statuses[-1] == 429:
            break

    assert 429 in statuses and len(statuses) <= 9, statuses
    assert set(statuses[:-1]) == {403}
    # once limited, even the right code does not get through
    assert login(Browser(gw), "alice", secret, code=right)[0] == 429
