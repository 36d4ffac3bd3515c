"""one-time submission keys on registration, the Table of Trust, places, turns and agreements

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-30 21:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None

# (table, index, owner column): a resent form finds the row its first post made.
KEYED = (
    ('ritual_items', 'uq_ritual_items_submission', 'author_id'),
    ('places', 'uq_places_submission', 'started_by_id'),
    ('place_turns', 'uq_place_turns_submission', 'writer_id'),
    ('agreements', 'uq_agreements_submission', 'proposer_id'),
)


def upgrade():
    # Registration: the unique address keeps one account; the key tells its own form again.
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('submission_key', sa.String(length=64), nullable=True))

    for table, index, owner in KEYED:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column('submission_key', sa.String(length=64), nullable=True))
            batch_op.create_index(index, [owner, 'submission_key'], unique=True)


def downgrade():
    for table, index, _ in reversed(KEYED):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_index(index)
            batch_op.drop_column('submission_key')

    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_column('submission_key')
