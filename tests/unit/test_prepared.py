"""`Prepared`: a model query compiled once per database kind gives the same rows as peewee's
own query for any parameter, on SQLite and PostgreSQL."""

import pytest

from botical.db.database import Prepared
from botical.db.models import Message, Part, Project, Session, User
from botical.ids import new_id
from botical.services.messages import part_to_dict


def _fill(session_ids: list[str]) -> None:
    user = User.create(id=new_id("usr"), name="u")
    project = Project.create(id=new_id("prj"), name="p", owner=user.id)
    for n, sid in enumerate(session_ids):
        Session.create(id=sid, project=project.id, created_by=user.id)
        message = Message.create(id=new_id("msg"), session=sid, role="user")
        for position in range(n + 2):
            content = {"text": f"{sid} {position} \u00e9\u4e2d\"'\\"}
            Part.create(
                id=new_id("part"),
                message=message.id,
                session=sid,
                type="text",
                position=position,
                content=content,
            )


PARTS = Prepared(
    Part,
    lambda session_id: Part.select().where(Part.session == session_id).order_by(Part.position),
    1,
)


@pytest.mark.gen_test
async def test_rows_equal_what_the_models_give_for_each_parameter(db):
    sessions = [new_id("sess"), new_id("sess")]
    await db.atomic(_fill, sessions)
    for sid in sessions:
        prepared = await db.run(PARTS.rows, sid)
        expected = await db.run(
            lambda s=sid: list(Part.select().where(Part.session == s).order_by(Part.position))
        )
        assert [part_to_dict(r) for r in prepared] == [part_to_dict(p) for p in expected]
        assert isinstance(prepared[0].content, dict)  # JSON is converted
        assert prepared[0].message_id == expected[0].message_id  # foreign keys read as *_id
    assert await db.run(PARTS.rows, new_id("sess")) == []


@pytest.mark.gen_test
async def test_values_written_into_the_query_stay_beside_the_parameters(db):
    sessions = [new_id("sess")]
    await db.atomic(_fill, sessions)
    later = Prepared(
        Part,
        lambda sid, position: Part.select().where(
            Part.session == sid, Part.type == "text", Part.position >= position
        ),
        2,
    )
    assert [r.position for r in await db.run(later.rows, sessions[0], 1)] == [1]
    assert [r.position for r in await db.run(later.rows, sessions[0], 0)] == [0, 1]


@pytest.mark.gen_test
async def test_a_query_that_does_not_select_the_whole_row_is_refused(db):
    partial = Prepared(Part, lambda sid: Part.select(Part.id).where(Part.session == sid), 1)
    with pytest.raises(ValueError, match="every column"):
        await db.run(partial.rows, new_id("sess"))


def test_the_argument_count_must_match_the_markers():
    with pytest.raises(ValueError):
        PARTS.rows("a", "b")
