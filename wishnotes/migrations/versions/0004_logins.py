"""logins as rows: sign-out ends a login; key sessions belong to their login

Revision ID: 0004
Revises: 0011
Create Date: 2026-11-30 17:45:00.000000

Every login cookie issued before this revision named "<user id>:<session version>"; logins are now
rows, so those cookies (and the key sessions opened with them) end here: people sign in again once.
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0004'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('logins',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('token_hash', sa.LargeBinary(length=32), nullable=False),
    sa.Column('remember_hash', sa.LargeBinary(length=32), nullable=True),
    sa.Column('previous_remember_hash', sa.LargeBinary(length=32), nullable=True),
    sa.Column('rotated_at', sa.DateTime(), nullable=True),
    sa.Column('remember', sa.Boolean(), nullable=False),
    sa.Column('device', sa.String(length=60), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('last_seen_on', sa.Date(), nullable=False),
    sa.Column('expires_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_logins_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_logins')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_logins_token_hash'))
    )
    with op.batch_alter_table('logins', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_logins_expires_at'), ['expires_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_logins_user_id'), ['user_id'], unique=False)

    # Key sessions of the old cookies have no login to belong to.
    op.execute('DELETE FROM key_sessions')
    with op.batch_alter_table('key_sessions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('login_id', sa.Integer(), nullable=False))
        batch_op.create_index(batch_op.f('ix_key_sessions_login_id'), ['login_id'], unique=False)
        batch_op.create_foreign_key(batch_op.f('fk_key_sessions_login_id_logins'), 'logins', ['login_id'], ['id'], ondelete='CASCADE')

    # A plain ALTER TABLE ... DROP COLUMN (SQLite 3.35+), never a rebuild of the users table:
    # rebuilding it would cascade deletes into every table that points at users.
    op.drop_column('users', 'session_version')


def downgrade():
    op.add_column('users', sa.Column('session_version', sa.Integer(), server_default='1', nullable=False))
    with op.batch_alter_table('key_sessions', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_key_sessions_login_id_logins'), type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_key_sessions_login_id'))
        batch_op.drop_column('login_id')

    with op.batch_alter_table('logins', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_logins_user_id'))
        batch_op.drop_index(batch_op.f('ix_logins_expires_at'))

    op.drop_table('logins')
