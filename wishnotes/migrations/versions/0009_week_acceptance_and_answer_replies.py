"""week acceptance, written replies to answers, and answers seen by their writer

Revision ID: 0009
Revises: 0006
Create Date: 2026-11-30 17:50:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0009'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('notes', schema=None) as batch_op:
        batch_op.add_column(sa.Column('reply_envelope', sa.LargeBinary(), nullable=True))
        batch_op.add_column(sa.Column('answer_seen_at', sa.DateTime(), nullable=True))
    with op.batch_alter_table('program_weeks', schema=None) as batch_op:
        batch_op.add_column(sa.Column('accepted_at', sa.DateTime(), nullable=True))
    # Weeks begun before acceptance existed were started by one partner alone: they run as they are.
    op.execute('UPDATE program_weeks SET accepted_at = created_at')
    # Answers given before this are not news to their writers.
    op.execute('UPDATE notes SET answer_seen_at = answered_at WHERE answered_at IS NOT NULL')


def downgrade():
    with op.batch_alter_table('program_weeks', schema=None) as batch_op:
        batch_op.drop_column('accepted_at')
    with op.batch_alter_table('notes', schema=None) as batch_op:
        batch_op.drop_column('answer_seen_at')
        batch_op.drop_column('reply_envelope')
