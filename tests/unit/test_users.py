"""-u USER[:GROUP] numbers (runtime/users.py): in range or refused, never wrapped.

4294967295 is (uid_t)-1, which setresuid reads as "leave unchanged": taken as an id, it
left the command running as root."""

from __future__ import annotations

import pytest

from layergit.runtime.users import MAX_ID, UserError, _image_id, check, parse_id


@pytest.mark.parametrize("text, value", [
    ("0", 0), ("1000", 1000), ("007", 7), ("4294967294", MAX_ID),
    ("app", None), ("", None), ("1a", None), ("\u0661", None),  # names: looked up in the image
])
def test_parse_id(text, value):
    assert parse_id(text) == value


@pytest.mark.parametrize("text", ["4294967295", "4294967296", "99999999999", "9" * 5000, "-1", "-0", "00000000004294967295"])
def test_ids_out_of_range_are_refused(text):
    with pytest.raises(UserError) as caught:
        parse_id(text)
    message = str(caught.value)
    assert "ids are 0 to 4294967294" in message and len(message) < 100


@pytest.mark.parametrize("spec", ["99999999999", "-1", "4294967295", "1:99999999999", "app:-1", "1:4294967295"])
def test_check_refuses_a_spec_with_a_number_out_of_range(spec):
    with pytest.raises(UserError):
        check(spec)


@pytest.mark.parametrize("spec", ["", "0", "app", "app:staff", "1000:1000", "4294967294:4294967294", ":1"])
def test_check_leaves_names_to_the_image(spec):
    check(spec)


@pytest.mark.parametrize("text", ["4294967295", "-1", "abc", "", "1e3"])
def test_an_image_id_must_be_a_number_in_range(text):
    with pytest.raises(UserError, match="the image's /etc/passwd gives 'app' the id"):
        _image_id(text, "/etc/passwd", "app")
    assert _image_id("33", "/etc/passwd", "www-data") == 33
