"""scheduler slot indexes in id order: each batch of a slot starts where the last ended

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-30 20:50:00.000000

"""
from alembic import op


# revision identifiers, used by Alembic.
revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_index('ix_users_weekly_slot')
        batch_op.drop_index('ix_users_daily_slot')
        batch_op.create_index('ix_users_weekly_slot', ['timezone', 'weekly_weekday', 'weekly_hour', 'id'], unique=False)
        batch_op.create_index('ix_users_daily_slot', ['timezone', 'daily_hour', 'id'], unique=False)


def downgrade():
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_index('ix_users_daily_slot')
        batch_op.drop_index('ix_users_weekly_slot')
        batch_op.create_index('ix_users_daily_slot', ['timezone', 'daily_hour'], unique=False)
        batch_op.create_index('ix_users_weekly_slot', ['timezone', 'weekly_weekday', 'weekly_hour'], unique=False)
