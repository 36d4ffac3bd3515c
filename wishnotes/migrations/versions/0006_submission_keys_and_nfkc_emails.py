"""one-time submission keys on notes and weeks; NFKC email addresses

Revision ID: 0006
Revises: 0003
Create Date: 2026-11-30 18:00:00.000000

"""
import unicodedata

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0006'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('notes', schema=None) as batch_op:
        batch_op.add_column(sa.Column('submission_key', sa.String(length=64), nullable=True))
        batch_op.create_index('uq_notes_submission', ['sender_id', 'submission_key'], unique=True)

    with op.batch_alter_table('program_weeks', schema=None) as batch_op:
        batch_op.add_column(sa.Column('submission_key', sa.String(length=64), nullable=True))
        batch_op.create_index('uq_program_weeks_submission', ['started_by_id', 'submission_key'], unique=True)

    # Addresses are NFKC-normalised from now on (a full-width address is the plain one), so
    # stored ones take that form too, unless it would collide with another account's.
    connection = op.get_bind()
    rows = connection.execute(sa.text('SELECT id, email FROM users')).all()
    taken = {email for _, email in rows}
    for user_id, email in rows:
        normalized = unicodedata.normalize('NFKC', email).lower()
        if normalized != email and normalized not in taken:
            connection.execute(
                sa.text('UPDATE users SET email = :email WHERE id = :id'),
                {'email': normalized, 'id': user_id},
            )
            taken.add(normalized)


def downgrade():
    with op.batch_alter_table('program_weeks', schema=None) as batch_op:
        batch_op.drop_index('uq_program_weeks_submission')
        batch_op.drop_column('submission_key')

    with op.batch_alter_table('notes', schema=None) as batch_op:
        batch_op.drop_index('uq_notes_submission')
        batch_op.drop_column('submission_key')
