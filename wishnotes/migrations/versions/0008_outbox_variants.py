"""outbox variants: one stored body per bulk email variant, filled in at delivery

Revision ID: 0008
Revises: 0009
Create Date: 2026-11-30 17:45:00

"""
from alembic import op
import sqlalchemy as sa



# revision identifiers, used by Alembic.
revision = '0008'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('outbox_variants',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('text_body', sa.Text(), nullable=False),
    sa.Column('html_body', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_outbox_variants'))
    )
    with op.batch_alter_table('outbox_emails', schema=None) as batch_op:
        batch_op.add_column(sa.Column('variant_id', sa.Integer(), nullable=True))
        batch_op.create_foreign_key(batch_op.f('fk_outbox_emails_variant_id_outbox_variants'), 'outbox_variants', ['variant_id'], ['id'])


def downgrade():
    with op.batch_alter_table('outbox_emails', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_outbox_emails_variant_id_outbox_variants'), type_='foreignkey')
        batch_op.drop_column('variant_id')

    op.drop_table('outbox_variants')
