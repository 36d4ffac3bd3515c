"""indexes for the note lists and the unread count; keyset paging reads them newest first

Revision ID: 0007
Revises: 0004
Create Date: 2026-11-30 17:40:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0007'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('notes', schema=None) as batch_op:
        batch_op.create_index('ix_notes_inbox', ['pair_id', 'recipient_id', 'created_at', 'id'], unique=False)
        batch_op.create_index('ix_notes_sent', ['pair_id', 'sender_id', 'created_at', 'id'], unique=False)
        batch_op.create_index(
            'ix_notes_unread',
            ['recipient_id', 'pair_id'],
            unique=False,
            sqlite_where=sa.text('read_at IS NULL'),
            postgresql_where=sa.text('read_at IS NULL'),
        )
        # Both new list indexes lead with pair_id.
        batch_op.drop_index('ix_notes_pair_id')


def downgrade():
    with op.batch_alter_table('notes', schema=None) as batch_op:
        batch_op.create_index('ix_notes_pair_id', ['pair_id'], unique=False)
        batch_op.drop_index('ix_notes_unread')
        batch_op.drop_index('ix_notes_sent')
        batch_op.drop_index('ix_notes_inbox')
