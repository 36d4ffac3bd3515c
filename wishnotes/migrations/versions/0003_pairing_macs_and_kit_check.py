"""authenticated pairing (invite and joiner MACs) and the recovery-kit check in the key session

Revision ID: 0003
Revises: 0007
Create Date: 2026-11-30 18:00:00.000000

Existing rows: invites still open have no MAC of the inviter's keys, so nobody could check them;
they are withdrawn here and the inviter makes a new link. Keyrings written before pins named
pairs are read as they are (see wishnotes.keyring_store); a user whose keyring is missing sees
the key-changed warning until the two compare safety numbers (README, "What Wishnotes protects
against").
"""
from datetime import UTC, datetime

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0003'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('invites', schema=None) as batch_op:
        batch_op.add_column(sa.Column('inviter_mac', sa.LargeBinary(length=32), nullable=True))
    with op.batch_alter_table('pairs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('invite_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('joiner_mac', sa.LargeBinary(length=32), nullable=True))
    with op.batch_alter_table('key_sessions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('kit_check', sa.LargeBinary(), nullable=True))
    # Naive UTC, as the models store it, on SQLite and PostgreSQL alike.
    op.get_bind().execute(
        sa.text(
            "UPDATE invites SET revoked_at = :now WHERE used_at IS NULL AND revoked_at IS NULL"
        ),
        {"now": datetime.now(UTC).replace(tzinfo=None)},
    )


def downgrade():
    with op.batch_alter_table('key_sessions', schema=None) as batch_op:
        batch_op.drop_column('kit_check')
    with op.batch_alter_table('pairs', schema=None) as batch_op:
        batch_op.drop_column('joiner_mac')
        batch_op.drop_column('invite_id')
    with op.batch_alter_table('invites', schema=None) as batch_op:
        batch_op.drop_column('inviter_mac')
