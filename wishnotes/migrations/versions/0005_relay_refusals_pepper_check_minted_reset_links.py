"""relay refusals, per-email refusals, the pepper check, reset links minted at delivery

Revision ID: 0005
Revises: 0008
Create Date: 2026-11-30 17:50:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0005'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('mail_relays',
    sa.Column('name', sa.String(length=32), nullable=False),
    sa.Column('failures', sa.Integer(), nullable=False),
    sa.Column('failing_since', sa.DateTime(), nullable=True),
    sa.Column('retry_at', sa.DateTime(), nullable=True),
    sa.Column('last_error', sa.String(length=500), nullable=True),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_mail_relays'))
    )
    op.create_table('pepper_checks',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('check_value', sa.LargeBinary(length=32), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_pepper_checks'))
    )
    with op.batch_alter_table('outbox_emails', schema=None) as batch_op:
        batch_op.add_column(sa.Column('refusals', sa.Integer(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('failing_since', sa.DateTime(), nullable=True))
    # Reset emails are rendered at delivery now: a waiting row's stored body (with a link in
    # clear) is dropped, and its link minted afresh when it goes out.
    op.execute("UPDATE outbox_emails SET text_body = '', html_body = '' WHERE kind = 'password_reset'")
    with op.batch_alter_table('password_resets', schema=None) as batch_op:
        batch_op.alter_column('token_hash', existing_type=sa.LargeBinary(length=32), nullable=True)


def downgrade():
    op.execute("DELETE FROM password_resets WHERE token_hash IS NULL")
    with op.batch_alter_table('password_resets', schema=None) as batch_op:
        batch_op.alter_column('token_hash', existing_type=sa.LargeBinary(length=32), nullable=False)
    with op.batch_alter_table('outbox_emails', schema=None) as batch_op:
        batch_op.drop_column('failing_since')
        batch_op.drop_column('refusals')
    op.drop_table('pepper_checks')
    op.drop_table('mail_relays')
