"""The accounts file and the owners of an account (pure parsing)."""

from __future__ import annotations

import pytest

from bot.accounts import AccountsFileError, merge_accounts, parse_accounts_file, split_owners
from bot.models import Account


def test_owners_from_the_file_keep_users_groups_and_emails_in_order():
    [account] = parse_accounts_file('- id: "111122223333"\n  owners: [U01ALICE, S0SECOPS, bob@example.com, U01ALICE]\n')
    assert account.owners == ("U01ALICE", "S0SECOPS", "bob@example.com")


def test_owners_as_a_space_separated_string_like_a_tag_value():
    assert split_owners("U01ALICE  carol@example.org S0GRP") == (("U01ALICE", "carol@example.org", "S0GRP"), ())


@pytest.mark.parametrize("bad", ["<!channel>", "alice", "U01ALICE,U02BOB", "<mailto:a@b.co|a@b.co>"])
def test_an_owner_that_is_not_an_id_or_email_is_refused_with_its_entry(bad):
    with pytest.raises(AccountsFileError, match=r"entry 1 \(111122223333\): owners"):
        parse_accounts_file(f'- id: "111122223333"\n  owners: ["{bad}"]\n')


def test_owners_must_be_a_list_or_string():
    with pytest.raises(AccountsFileError, match="owners must be a list"):
        parse_accounts_file('- id: "111122223333"\n  owners: {a: 1}\n')


def test_the_first_source_that_sets_a_field_wins_and_owners_are_combined():
    merged = merge_accounts(
        [Account("111122223333", name="file", owners=("U0FILE",))],
        [Account("111122223333", name="org", channel="C0ORG", owners=("U0TAG", "U0FILE")), Account("444455556666")],
    )
    assert [(a.id, a.name, a.channel, a.owners) for a in merged] == [
        ("111122223333", "file", "C0ORG", ("U0FILE", "U0TAG")),
        ("444455556666", None, None, ()),
    ]
